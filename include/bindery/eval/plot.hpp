// bindery/eval/plot.hpp — forwarding header.
// Moved to bindery/plot/plot.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/plot/plot.hpp"
