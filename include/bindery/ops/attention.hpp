// bindery/ops/attention.hpp — (to be written)
#pragma once

#include "bindery/ops/shape.hpp"
