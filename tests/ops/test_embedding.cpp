#include "test_util.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

TEMPLATE_LIST_TEST_CASE("embedding looks up weight rows for ids of any shape", "[ops][embedding]",
                        bindery::testing::Backends) {
  using B = TestType;
  // weight[v] = (10v, 10v + 1, 10v + 2)
  const auto weight = Tensor<float, B>::from_vector({0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, {4, 3});
  require_values(ops::embedding_forward(Tensor<int64_t, B>::from_vector({3, 0}), weight), Shape{2, 3},
                 {30, 31, 32, 0, 1, 2});
  const auto ids = Tensor<int64_t, B>::from_vector({1, 1, 2, 0, 3, 1}, {2, 3});
  require_values(ops::embedding_forward(ids, weight), Shape{2, 3, 3},
                 {10, 11, 12, 10, 11, 12, 20, 21, 22, 0, 1, 2, 30, 31, 32, 10, 11, 12});
  require_values(ops::embedding_forward(Tensor<int64_t, B>::scalar(2), weight), Shape{3}, {20, 21, 22});
  // A strided ids tensor (transpose) is read in logical order.
  require_values(ops::embedding_forward(ids.transpose(0, 1), weight), Shape{3, 2, 3},
                 {10, 11, 12, 0, 1, 2, 10, 11, 12, 30, 31, 32, 20, 21, 22, 10, 11, 12});
}

TEMPLATE_LIST_TEST_CASE("embedding backward accumulates repeated ids", "[ops][embedding]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<double, B> weight(Tensor<double, B>::zeros({4, 2}), true);
  const auto ids = Tensor<int64_t, B>::from_vector({1, 3, 1, 1}, {2, 2});
  Var<double, B> y = ops::embedding(ids, weight);
  REQUIRE(y.shape() == Shape{2, 2, 2});
  y.backward(Tensor<double, B>::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}));
  // id 1 at positions 0, 2, 3: (1 + 5 + 7, 2 + 6 + 8); id 3 at position 1: (3, 4).
  require_values(weight.grad(), Shape{4, 2}, {0, 0, 13, 16, 0, 0, 3, 4});

  auto w = random_var<double, B>({5, 3}, 31);
  const auto many = Tensor<int64_t, B>::from_vector({4, 0, 4, 2, 2, 2}, {3, 2});
  require_gradcheck<B>([&](const auto& in) { return ops::embedding(many, in[0]); }, {w});
}

TEST_CASE("embedding backward is exact under heavy repetition (parallel, race-free)", "[ops][embedding]") {
  // A text batch: 64 sequences of 77 tokens, mostly padding id 0, over a 1000-word vocabulary.
  const int64_t batch = 64, length = 77, vocab = 1000, dim = 96;
  Philox rng(5);
  std::vector<int64_t> ids(static_cast<size_t>(batch * length));
  std::vector<int64_t> counts(vocab, 0);
  for (auto& id : ids) {
    id = rng.next_uniform() < 0.7 ? 0 : static_cast<int64_t>(rng.next_below(vocab));
    ++counts[static_cast<size_t>(id)];
  }
  Var<float> weight(Tensor<float>::zeros({vocab, dim}), true);
  Var<float> y = ops::embedding(Tensor<int64_t>::from_vector(ids, {batch, length}), weight);
  y.backward(Tensor<float>::ones({batch, length, dim}));
  std::vector<double> expected;
  for (int64_t v = 0; v < vocab; ++v) {
    for (int64_t k = 0; k < dim; ++k) expected.push_back(static_cast<double>(counts[static_cast<size_t>(v)]));
  }
  require_values(weight.grad(), Shape{vocab, dim}, expected, 0.0);
}

TEST_CASE("embedding rejects bad ids and weight shapes", "[ops][embedding][errors]") {
  const Var<float> weight(Tensor<float>::zeros({4, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::embedding(Tensor<int64_t>::from_vector({0, 4}), weight), IndexError,
                                  "id 4", "(4, 3)", "(2,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::embedding(Tensor<int64_t>::from_vector({-2}), weight), IndexError,
                                  "id -2", "(4, 3)");
  const Var<float> flat(Tensor<float>::zeros({12}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::embedding(Tensor<int64_t>::from_vector({0, 1}, {1, 2}), flat),
                                  ShapeError, "(12,)", "(1, 2)");
}
