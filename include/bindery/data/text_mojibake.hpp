// bindery/data/text_mojibake.hpp — forwarding header.
// Moved to bindery/data/text/mojibake.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/data/text/mojibake.hpp"
