// bindery/ops/matmul.hpp — (to be written)
#pragma once

#include "bindery/ops/shape.hpp"
