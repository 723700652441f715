#include "test_util.hpp"
#include "test_attention_bodies.hpp"

#include <limits>

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

namespace {

/// (lq, lk) additive causal mask: 0 on and below the diagonal, -inf above.
template <class T>
Var<T> causal_mask(int64_t lq, int64_t lk) {
  std::vector<T> m(static_cast<size_t>(lq * lk), T(0));
  for (int64_t i = 0; i < lq; ++i)
    for (int64_t j = i + 1; j < lk; ++j) m[size_t(i * lk + j)] = -std::numeric_limits<T>::infinity();
  return Var<T>(Tensor<T>::from_vector(m, {lq, lk}), false);
}

/// Fused vs composite: values and the gradients of every input that requires grad.
template <class T>
void require_fused_matches_composite(const Var<T>& q, const Var<T>& k, const Var<T>& v, const Var<T>& mask,
                                     double scale, double tolerance, std::vector<Var<T>> inputs = {}) {
  // the leaves whose gradients are compared: q, k, v (and a mask that requires grad) by default
  if (inputs.empty()) inputs = {q, k, v};
  if (mask.defined() && mask.requires_grad()) inputs.push_back(mask);
  for (auto& x : inputs) x.zero_grad();
  const Var<T> fused = ops::scaled_dot_product_attention(q, k, v, mask, scale);
  Philox rng(99);
  const Tensor<T> g = Tensor<T>::uniform(fused.shape(), rng, -1, 1);
  fused.backward(g, /*retain_graph=*/true);  // the twin reuses any graph that made q, k, v
  std::vector<std::vector<T>> fused_grads;
  for (auto& x : inputs) {
    fused_grads.push_back(x.grad().to_vector());
    x.zero_grad();
  }
  const Var<T> twin = ops::attention_composite(q, k, v, mask, scale);
  REQUIRE(fused.shape() == twin.shape());
  CHECK(testing::max_abs_diff(fused.value().to_vector(), twin.value().to_vector()) < tolerance);
  twin.backward(g);
  for (size_t i = 0; i < inputs.size(); ++i) {
    INFO("gradient of input " << i << " of shape " << inputs[i].shape());
    CHECK(testing::max_abs_diff(fused_grads[i], inputs[i].grad().to_vector()) < tolerance);
  }
}

}  // namespace

TEST_CASE("causal attention: row 0 sees only key 0, masked keys weigh exactly 0", "[ops][attention]") {
  auto q = random_var<float>({2, 4, 3}, 1);
  auto k = random_var<float>({2, 4, 3}, 2);
  auto v = random_var<float>({2, 4, 5}, 3);
  const Var<float> y = ops::scaled_dot_product_attention(q, k, v, causal_mask<float>(4, 4));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 5; ++j) REQUIRE(y.value().at({b, 0, j}) == v.value().at({b, 0, j}));
  // key 3 lies above the diagonal of query row 2: no gradient reaches it from that row
  ops::sum(ops::select(y, 1, 2)).backward();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t j = 0; j < 3; ++j) REQUIRE(k.grad().at({b, 3, j}) == 0.f);
  for (float g : q.grad().to_vector()) REQUIRE(std::isfinite(g));
}

TEST_CASE("fused attention matches the composite, forward and gradients", "[ops][attention]") {
  SECTION("no mask, batch and head axes, float and double") {
    require_fused_matches_composite(random_var<double>({2, 3, 5, 4}, 1), random_var<double>({2, 3, 7, 4}, 2),
                                    random_var<double>({2, 3, 7, 6}, 3), Var<double>(), 0.0, 1e-12);
    require_fused_matches_composite(random_var<float>({2, 3, 5, 4}, 1), random_var<float>({2, 3, 7, 4}, 2),
                                    random_var<float>({2, 3, 7, 6}, 3), Var<float>(), 0.0, 2e-6);
  }
  SECTION("causal mask and an explicit scale") {
    require_fused_matches_composite(random_var<double>({3, 6, 4}, 4), random_var<double>({3, 6, 4}, 5),
                                    random_var<double>({3, 6, 2}, 6), causal_mask<double>(6, 6), 0.7, 1e-12);
    require_fused_matches_composite(random_var<float>({3, 6, 4}, 4), random_var<float>({3, 6, 4}, 5),
                                    random_var<float>({3, 6, 2}, 6), causal_mask<float>(6, 6), 0.7, 2e-6);
  }
  SECTION("key padding mask (B, 1, 1, Lk) and a learnable bias with a gradient") {
    std::vector<double> pad(2 * 7, 0.0);
    pad[5] = pad[6] = pad[13] = -std::numeric_limits<double>::infinity();
    const Var<double> padding(Tensor<double>::from_vector(pad, {2, 1, 1, 7}));
    auto q = random_var<double>({2, 3, 5, 4}, 7);
    auto k = random_var<double>({2, 3, 7, 4}, 8);
    auto v = random_var<double>({2, 3, 7, 3}, 9);
    require_fused_matches_composite(q, k, v, padding, 0.0, 1e-12);
    auto bias = random_var<double>({3, 5, 7}, 10);  // per head, broadcast over the batch
    require_fused_matches_composite(q, k, v, bias, 0.0, 1e-12);
    auto bias_f = random_var<float>({3, 5, 7}, 10);
    require_fused_matches_composite(random_var<float>({2, 3, 5, 4}, 7), random_var<float>({2, 3, 7, 4}, 8),
                                    random_var<float>({2, 3, 7, 3}, 9), bias_f, 0.0, 2e-6);
  }
  SECTION("several query blocks and key tiles, small and large batches") {
    // Lq = 130: three row blocks; Lk = 600: two key tiles; batch 1 splits the backward.
    require_fused_matches_composite(random_var<double>({1, 130, 8}, 11), random_var<double>({1, 600, 8}, 12),
                                    random_var<double>({1, 600, 5}, 13), causal_mask<double>(130, 600), 0.0,
                                    1e-12);
    require_fused_matches_composite(random_var<float>({20, 70, 8}, 11), random_var<float>({20, 90, 8}, 12),
                                    random_var<float>({20, 90, 8}, 13), Var<float>(), 0.0, 2e-6);
  }
  SECTION("broadcast k and v over the batch; q, k, v as views of one fused qkv tensor") {
    require_fused_matches_composite(random_var<double>({2, 3, 5, 4}, 14),
                                    random_var<double>({1, 3, 6, 4}, 15), random_var<double>({3, 6, 2}, 16),
                                    Var<double>(), 0.0, 1e-12);
    // (B, L, 3, H, Dh) -> three (B, H, L, Dh) views with unit-stride rows 3·H·Dh apart
    auto qkv = random_var<double>({2, 5, 3, 2, 4}, 17);
    const Var<double> heads = ops::permute(qkv, {2, 0, 3, 1, 4});  // (3, B, H, L, Dh)
    require_fused_matches_composite(ops::select(heads, 0, 0), ops::select(heads, 0, 1),
                                    ops::select(heads, 0, 2), Var<double>(), 0.0, 1e-12, {qkv});
    // and a transposed (non-unit-stride) k, which the op copies
    auto kt = random_var<double>({2, 4, 6}, 18);
    auto q = random_var<double>({2, 5, 4}, 19);
    auto v = random_var<double>({2, 6, 3}, 20);
    require_fused_matches_composite(q, ops::transpose(kt, 1, 2), v, Var<double>(), 0.0, 1e-12, {q, kt, v});
  }
}

TEST_CASE("fused attention passes gradcheck, mask gradient included", "[ops][attention][gradcheck]") {
  auto q = random_var<double>({1, 66, 2}, 21);  // two query blocks
  auto k = random_var<double>({1, 4, 2}, 22);
  auto v = random_var<double>({1, 4, 2}, 23);
  auto bias = random_var<double>({66, 4}, 24);
  require_gradcheck<Cpu>(
      [](const std::vector<Var<double>>& in) {
        return ops::scaled_dot_product_attention(in[0], in[1], in[2], in[3]);
      },
      {q, k, v, bias});
  auto q2 = random_var<double>({3, 4, 3}, 25);
  auto k2 = random_var<double>({3, 4, 3}, 26);
  auto v2 = random_var<double>({3, 4, 3}, 27);
  const Var<double> causal = causal_mask<double>(4, 4);
  require_gradcheck<Cpu>(
      [&causal](const std::vector<Var<double>>& in) {
        return ops::scaled_dot_product_attention(in[0], in[1], in[2], causal, 0.5);
      },
      {q2, k2, v2});
}

TEST_CASE("a fully masked query row gives zeros and zero gradients", "[ops][attention]") {
  auto q = random_var<double>({2, 3}, 31);
  auto k = random_var<double>({4, 3}, 32);
  auto v = random_var<double>({4, 2}, 33);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> m(8, 0.0);
  for (int j = 0; j < 4; ++j) m[size_t(4 + j)] = -inf;  // row 1 sees no key
  auto mask = Var<double>(Tensor<double>::from_vector(m, {2, 4}), true);
  const Var<double> y = ops::scaled_dot_product_attention(q, k, v, mask);
  REQUIRE(y.value().at({1, 0}) == 0.0);
  REQUIRE(y.value().at({1, 1}) == 0.0);
  ops::sum(y).backward();
  for (int j = 0; j < 3; ++j) REQUIRE(q.grad().at({1, j}) == 0.0);
  for (double g : mask.grad().to_vector()) REQUIRE(std::isfinite(g));
  for (double g : k.grad().to_vector()) REQUIRE(std::isfinite(g));
}

TEST_CASE("attention rejects mismatched shapes", "[ops][attention]") {
  const auto q = Tensor<float>::ones({2, 3, 4});
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::scaled_dot_product_attention_forward(q, Tensor<float>::ones({2, 5, 3}),
                                                                            Tensor<float>::ones({2, 5, 6})),
                                  ShapeError, "(2, 3, 4)", "(2, 5, 3)", "(2, 5, 6)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::scaled_dot_product_attention_forward(q, Tensor<float>::ones({2, 5, 4}),
                                                                            Tensor<float>::ones({2, 6, 4})),
                                  ShapeError, "(2, 3, 4)", "(2, 5, 4)", "(2, 6, 4)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::scaled_dot_product_attention_forward(q, Tensor<float>::ones({3, 5, 4}),
                                                                            Tensor<float>::ones({3, 5, 4})),
                                  ShapeError, "(2, 3, 4)", "(3, 5, 4)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::scaled_dot_product_attention_forward(q, q, q, Tensor<float>::zeros({3, 2})), ShapeError, "(3, 2)",
      "(2, 3, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::scaled_dot_product_attention_forward(Tensor<float>::ones({4}), q, q),
                                  ShapeError, "(4,)", "(2, 3, 4)");
}
