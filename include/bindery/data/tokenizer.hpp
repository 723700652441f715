// bindery/data/tokenizer.hpp — forwarding header.
// Moved to bindery/data/text/tokenizer.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/data/text/tokenizer.hpp"
