// Compiled with the precompiled header so that test binaries can reuse it.
#include "test_util.hpp"
