// tests/cuda/mixed_tu_nvcc.cu — the nvcc translation unit of test_mixed_tu_* (see mixed_tu.hpp).
// It includes bindery the way a CUDA user does (<bindery/cuda.hpp>), and runs only Cpu code: no
// CUDA runtime call, so the test runs on machines without a GPU.
#include <bindery/cuda.hpp>

#include "mixed_tu.hpp"

namespace mixed_tu {
Outputs compute_nvcc(const Inputs& in) {
  return compute(in);
}
}  // namespace mixed_tu
