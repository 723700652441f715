// bindery/cuda.hpp — the CUDA umbrella header: everything a CUDA user needs.
//
//   ```cpp cuda
//   // main.cu, compiled by nvcc; CMake: target_link_libraries(app PRIVATE bindery::cuda)
//   #include <bindery/cuda.hpp>
//   using namespace bindery;
//
//   int main() {
//     Philox rng(7);
//     nn::Linear<float, Cuda> layer(512, 256, /*bias=*/true, /*seed=*/1);  // the Cpu's initial weights
//     const Var<float, Cuda> x(Tensor<float, Cuda>::normal({8, 512}, rng));
//     const Tensor<float> y = layer.forward(x).value().to<Cpu>();  // (8, 256), copied to the host
//   }
//   ```
//
// (tests/docs compiles this example in CUDA builds.)
//
// It is bindery.hpp (the CPU library: every op, module, loss and optimizer, generic over the
// backend) + backend/cuda.hpp (the Cuda policy) + kernels/all.cuh (the Cuda specializations of the
// op kernels; the bindery::cuda target puts kernels/ on the include path). Include this header, not
// backend/cuda.hpp alone: an op instantiated for Cuda before its kernel specialization is seen
// would not compile. Without nvcc, this header stops with a readable #error.
#pragma once

#include "bindery/bindery.hpp"
#include "bindery/backend/cuda.hpp"

#if BINDERY_COMPILING_CUDA
#include "all.cuh"
#endif
