// bindery/data/synth_digits.hpp — forwarding header.
// Moved to bindery/datasets/synth_digits.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/datasets/synth_digits.hpp"
