// bindery/data/text_mojibake_tables.hpp — forwarding header.
// Moved to bindery/data/text/mojibake_tables.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/data/text/mojibake_tables.hpp"
