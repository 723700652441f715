// bindery/data/text_tables.hpp — forwarding header.
// Moved to bindery/data/text/tables.hpp; this forwarding header goes away in the next release.
#pragma once

#include "bindery/data/text/tables.hpp"
