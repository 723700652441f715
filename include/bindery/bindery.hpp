// bindery/bindery.hpp — the umbrella header: everything a CPU user needs.
#pragma once

#include "bindery/config.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/philox.hpp"
#include "bindery/core/shape.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/backend/cpu.hpp"
#include "bindery/autograd/engine.hpp"
#include "bindery/autograd/gradcheck.hpp"
#include "bindery/autograd/grad_mode.hpp"
#include "bindery/autograd/var.hpp"
#include "bindery/ops/all.hpp"
#include "bindery/nn/all.hpp"
#include "bindery/loss/all.hpp"
#include "bindery/optim/all.hpp"
#include "bindery/dist/all.hpp"
#include "bindery/io/all.hpp"
