// bindery/data/synth_digits_sensors.hpp — forwarding header.
// Moved to bindery/datasets/synth_digits_sensors.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/datasets/synth_digits_sensors.hpp"
