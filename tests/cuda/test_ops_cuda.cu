// tests/cuda/test_ops_cuda.cu — the tests/ops test files, compiled by nvcc: every
// TEMPLATE_LIST_TEST_CASE body runs on Cpu and on Cuda (bindery::testing::Backends, test_util.hpp).
// The files' plain TEST_CASEs (Cpu only) come along and run again; on a GPU machine,
// `test_cuda "*- 1" "[cuda]"` selects the Cuda instances and the Cuda-only cases.
// One namespace per file keeps the files' local helpers apart (see test_bodies_prelude.hpp).
// tests/cuda/CMakeLists.txt fails the configuration when a test file with templated bodies is
// missing from this list or test_layers_cuda.cu.
#include "test_bodies_prelude.hpp"

// clang-format off
namespace bindery_cuda_tests::ops_arithmetic {
#include "ops/test_arithmetic.cpp"
}
namespace bindery_cuda_tests::ops_autocast {
#include "ops/test_autocast.cpp"
}
namespace bindery_cuda_tests::ops_attention {
#include "ops/test_attention.cpp"
}
namespace bindery_cuda_tests::ops_concat {
#include "ops/test_concat.cpp"
}
namespace bindery_cuda_tests::ops_conv {
#include "ops/test_conv.cpp"
}
namespace bindery_cuda_tests::ops_cross_entropy {
#include "ops/test_cross_entropy.cpp"
}
namespace bindery_cuda_tests::ops_dropout {
#include "ops/test_dropout.cpp"
}
namespace bindery_cuda_tests::ops_embedding {
#include "ops/test_embedding.cpp"
}
namespace bindery_cuda_tests::ops_gelu {
#include "ops/test_gelu.cpp"
}
namespace bindery_cuda_tests::ops_index {
#include "ops/test_index.cpp"
}
namespace bindery_cuda_tests::ops_layer_norm {
#include "ops/test_layer_norm.cpp"
}
namespace bindery_cuda_tests::ops_linear {
#include "ops/test_linear.cpp"
}
namespace bindery_cuda_tests::ops_matmul {
#include "ops/test_matmul.cpp"
}
namespace bindery_cuda_tests::ops_normalize {
#include "ops/test_normalize.cpp"
}
namespace bindery_cuda_tests::ops_shape {
#include "ops/test_shape.cpp"
}
namespace bindery_cuda_tests::ops_softmax {
#include "ops/test_softmax.cpp"
}
namespace bindery_cuda_tests::ops_symmetric_cross_entropy {
#include "ops/test_symmetric_cross_entropy.cpp"
}
namespace bindery_cuda_tests::ops_unfold {
#include "ops/test_unfold.cpp"
}
// clang-format on
