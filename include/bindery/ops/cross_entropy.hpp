// bindery/ops/cross_entropy.hpp — (to be written)
#pragma once

#include "bindery/ops/shape.hpp"
