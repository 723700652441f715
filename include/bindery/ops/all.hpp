// bindery/ops/all.hpp — every op header.
#pragma once

#include "bindery/ops/arithmetic.hpp"
#include "bindery/ops/elementwise.hpp"
#include "bindery/ops/functors.hpp"
#include "bindery/ops/pointwise.hpp"
#include "bindery/ops/reduce.hpp"
