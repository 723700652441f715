#include "test_util.hpp"
#include "test_embedding_bodies.hpp"

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

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
