// bindery/eval/plot_heatmap.hpp — forwarding header.
// Moved to bindery/plot/heatmap.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/plot/heatmap.hpp"
