// bindery/eval/plot_axes.hpp — forwarding header.
// Moved to bindery/plot/axes.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/plot/axes.hpp"
