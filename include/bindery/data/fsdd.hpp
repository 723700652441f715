// bindery/data/fsdd.hpp — forwarding header.
// Moved to bindery/datasets/fsdd.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/datasets/fsdd.hpp"
