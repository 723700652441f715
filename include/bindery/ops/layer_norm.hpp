// bindery/ops/layer_norm.hpp — (to be written)
#pragma once

#include "bindery/ops/shape.hpp"
