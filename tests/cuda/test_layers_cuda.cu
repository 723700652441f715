// tests/cuda/test_layers_cuda.cu — the templated test bodies of the layers above ops (core, loss,
// nn, optim: tests/<layer>/test_<name>_bodies.hpp), compiled by nvcc so that they run on Cpu and on
// Cuda; see test_ops_cuda.cu.
#include "test_util.hpp"

#include "core/test_float16_bodies.hpp"
#include "core/test_tensor_bodies.hpp"
#include "loss/test_info_nce_bodies.hpp"
#include "nn/test_layers_bodies.hpp"
#include "optim/test_grad_scaler_bodies.hpp"
#include "optim/test_optimizers_bodies.hpp"
#include "optim/test_schedule_clip_bodies.hpp"
