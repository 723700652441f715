// bindery/eval/svg.hpp — forwarding header.
// Moved to bindery/plot/svg.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/plot/svg.hpp"
