// bindery/data/text_clean.hpp — forwarding header.
// Moved to bindery/data/text/clean.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/data/text/clean.hpp"
