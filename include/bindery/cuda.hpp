// bindery/cuda.hpp — the CUDA umbrella header: everything a CUDA user needs.
//
//   // main.cu, compiled by nvcc; CMake: target_link_libraries(app PRIVATE bindery::cuda)
//   #include <bindery/cuda.hpp>
//   bindery::nn::Linear<float, bindery::Cuda> layer(512, 256, rng);
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
