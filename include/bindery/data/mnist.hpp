// bindery/data/mnist.hpp — forwarding header.
// Moved to bindery/datasets/mnist.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/datasets/mnist.hpp"
