// bindery/ops/dropout.hpp — (to be written)
#pragma once

#include "bindery/ops/shape.hpp"
