// tests/cuda/test_ops_cuda.cu — the templated test bodies of tests/ops, compiled by nvcc. Each test
// file keeps its TEMPLATE_LIST_TEST_CASEs in tests/ops/test_<name>_bodies.hpp, included by the file
// itself (test_ops: bindery::testing::Backends is (Cpu)) and here (Backends is (Cpu, Cuda), see
// test_util.hpp), so every body runs on Cpu and on Cuda; the files' Cpu-only TEST_CASEs stay in
// their .cpp. On a GPU machine, `test_cuda "*- 1" "[cuda]"` selects the Cuda instances and the
// Cuda-only cases. Each header wraps its helpers in its own namespace, so they cannot collide here.
// tests/cuda/CMakeLists.txt fails the configuration when a bodies header is missing from this list
// or test_layers_cuda.cu.
#include "test_util.hpp"

#include "ops/test_arithmetic_bodies.hpp"
#include "ops/test_attention_bodies.hpp"
#include "ops/test_autocast_bodies.hpp"
#include "ops/test_concat_bodies.hpp"
#include "ops/test_conv_bodies.hpp"
#include "ops/test_cross_entropy_bodies.hpp"
#include "ops/test_dropout_bodies.hpp"
#include "ops/test_embedding_bodies.hpp"
#include "ops/test_gelu_bodies.hpp"
#include "ops/test_index_bodies.hpp"
#include "ops/test_layer_norm_bodies.hpp"
#include "ops/test_linear_bodies.hpp"
#include "ops/test_matmul_bodies.hpp"
#include "ops/test_normalize_bodies.hpp"
#include "ops/test_shape_bodies.hpp"
#include "ops/test_softmax_bodies.hpp"
#include "ops/test_symmetric_cross_entropy_bodies.hpp"
#include "ops/test_unfold_bodies.hpp"
