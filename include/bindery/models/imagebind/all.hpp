// bindery/models/imagebind/all.hpp — every ImageBind header (same as imagebind.hpp).
#pragma once

#include "bindery/models/imagebind/imagebind.hpp"
