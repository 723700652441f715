// tests/cuda/test_layers_cuda.cu — the templated test bodies of the layers above ops (core, loss,
// nn, optim), compiled by nvcc so they run on Cpu and on Cuda; see test_ops_cuda.cu.
#include "test_bodies_prelude.hpp"

// clang-format off
namespace bindery_cuda_tests::core_float16 {
#include "core/test_float16.cpp"
}
namespace bindery_cuda_tests::core_tensor {
#include "core/test_tensor.cpp"
}
namespace bindery_cuda_tests::loss_info_nce {
#include "loss/test_info_nce.cpp"
}
namespace bindery_cuda_tests::nn_layers {
#include "nn/test_layers.cpp"
}
namespace bindery_cuda_tests::optim_grad_scaler {
#include "optim/test_grad_scaler.cpp"
}
namespace bindery_cuda_tests::optim_optimizers {
#include "optim/test_optimizers.cpp"
}
namespace bindery_cuda_tests::optim_schedule_clip {
#include "optim/test_schedule_clip.cpp"
}
// clang-format on
