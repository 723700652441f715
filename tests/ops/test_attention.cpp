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

// ---- bf16 inference attention (ops::scaled_dot_product_attention_bf16) ------------------------

namespace {

/// bf16 attention of random q, k, v (batch, L, D) and an additive mask (-inf on about a fifth of
/// the entries, finite biases elsewhere, query row 1 fully masked) checked element by element
/// against fp64 attention of the bf16-rounded q, k, v. The kernel also rounds P to bf16 (relative
/// 2⁻⁸, bf16's unit roundoff) and sums in fp32; the scores carry fp32's 2(D+2)·2⁻²⁴·scale·Σ|q k|
/// and the subtraction of the max, which move each weight by at most a factor e^{±2Δ}. So each
/// output may differ from the reference by Σ_j w_j |v_jc| · (2⁻⁸·1.01 + 4Δ + 4(Lk+8)·2⁻²⁴).
/// Returns the output.
/// With `bf16` false: the fp32 op (scaled_dot_product_attention_forward) against fp64 attention of
/// the fp32 q, k, v, the same bound without P's rounding.
std::vector<float> check_bf16_attention(int64_t batch, int64_t lq, int64_t lk, int64_t d, int64_t dv,
                                        bool force_loops, uint64_t seed, bool bf16 = true) {
  Philox rng(seed);
  const Tensor<float> q = Tensor<float>::uniform(Shape{batch, lq, d}, rng, -2, 2);
  const Tensor<float> k = Tensor<float>::uniform(Shape{batch, lk, d}, rng, -2, 2);
  const Tensor<float> v = Tensor<float>::uniform(Shape{batch, lk, dv}, rng, -2, 2);
  const std::vector<float> u = Tensor<float>::uniform(Shape{lq, lk}, rng, 0, 1).to_vector();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> m(u.size());
  for (int64_t i = 0; i < lq; ++i)
    for (int64_t j = 0; j < lk; ++j) {
      const float x = u[size_t(i * lk + j)];
      m[size_t(i * lk + j)] = (lq > 1 && i == 1) || x < 0.2f ? -inf : x - 0.5f;
    }
  const Tensor<float> mask = Tensor<float>::from_vector(m, {lq, lk});
  const Tensor<float> out = bf16 ? ops::scaled_dot_product_attention_bf16(q, k, v, mask, 0.0, force_loops)
                                 : ops::scaled_dot_product_attention_forward(q, k, v, mask);
  REQUIRE(out.shape() == Shape{batch, lq, dv});
  const std::vector<float> got = out.to_vector(), qv = q.to_vector(), kv = k.to_vector(), vv = v.to_vector();
  const auto r = [bf16](float x) { return bf16 ? double(float(bfloat16(x))) : double(x); };
  const double scale = double(float(1.0 / std::sqrt(double(d)))), eps = std::ldexp(1.0, -24);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < lq; ++i) {
      std::vector<double> s(size_t(lk), -double(inf));
      double top = -double(inf), delta = 0;
      for (int64_t j = 0; j < lk; ++j) {
        double dot = 0, magnitude = 0;
        for (int64_t p = 0; p < d; ++p) {
          const double x = r(qv[size_t((b * lq + i) * d + p)]) * r(kv[size_t((b * lk + j) * d + p)]);
          dot += x;
          magnitude += std::fabs(x);
        }
        const double bias = m[size_t(i * lk + j)];
        if (std::isinf(bias)) continue;
        s[size_t(j)] = scale * dot + bias;
        top = std::max(top, s[size_t(j)]);
        delta =
            std::max(delta, 2 * (d + 2) * eps * scale * magnitude + 4 * eps * (std::fabs(s[size_t(j)]) + 1));
      }
      for (int64_t c = 0; c < dv; ++c) {
        const double o = got[size_t((b * lq + i) * dv + c)];
        INFO("b " << b << " row " << i << " column " << c << " (lq " << lq << ", lk " << lk << ", d " << d
                  << ", dv " << dv << (force_loops ? ", loops)" : ")"));
        if (top == -double(inf)) {  // a fully masked row: zeros
          REQUIRE(o == 0.0f);
          continue;
        }
        double total = 0, want = 0, spread = 0;
        for (int64_t j = 0; j < lk; ++j) total += std::exp(s[size_t(j)] - top);
        for (int64_t j = 0; j < lk; ++j) {
          const double w = std::exp(s[size_t(j)] - top) / total, x = r(vv[size_t((b * lk + j) * dv + c)]);
          want += w * x;
          spread += w * std::fabs(x);
        }
        const double bound =
            spread * ((bf16 ? std::ldexp(1.01, -8) : 0.0) + 4 * (delta + 2 * eps) + 4 * double(lk + 8) * eps);
        REQUIRE(std::fabs(o - want) <= bound);
      }
    }
  return got;
}

}  // namespace

TEST_CASE("bf16 attention: fp64 references with the rounding bound, tile edges, kernel and loops",
          "[ops][attention]") {
  const bool kernel = detail::gemm_bf16_kernel_supported();
  if (!kernel) WARN("this CPU has no AVX512_BF16: only the loops are tested (the op itself runs fp32)");
  struct Case {
    int64_t batch, lq, lk, d, dv;
  };
  // row tiles of 6 and blocks of 64 queries, 16-column groups and 64-column tiles, odd D (a half
  // pair) and odd Lk, and 1027 keys: three key tiles of 344, 344, 339 (343 rounded up to even)
  for (const Case& c : {Case{1, 1, 1, 1, 1}, Case{2, 7, 5, 3, 6}, Case{1, 70, 67, 64, 17},
                        Case{3, 13, 81, 48, 48}, Case{1, 65, 1027, 33, 80}, Case{2, 5, 130, 80, 64}}) {
    const auto loops = check_bf16_attention(c.batch, c.lq, c.lk, c.d, c.dv, true, c.lq * 131 + c.lk);
    if (kernel) {
      const auto fast = check_bf16_attention(c.batch, c.lq, c.lk, c.d, c.dv, false, c.lq * 131 + c.lk);
      if (c.lk > 500) REQUIRE(fast != loops);  // the kernel sums in another order: both ran
    }
  }
  // 1 vs 2 threads bit for bit, on both paths
  const int before = Cpu::num_threads();
  for (bool loops : {false, true}) {
    Philox rng(5);
    const Tensor<float> q = Tensor<float>::uniform(Shape{3, 2, 90, 32}, rng, -1, 1);
    const Tensor<float> kv = Tensor<float>::uniform(Shape{3, 2, 600, 32}, rng, -1, 1);
    Cpu::set_num_threads(1);
    const auto one =
        ops::scaled_dot_product_attention_bf16(q, kv, kv, Tensor<float>(), 0.0, loops).to_vector();
    Cpu::set_num_threads(2);
    const auto two =
        ops::scaled_dot_product_attention_bf16(q, kv, kv, Tensor<float>(), 0.0, loops).to_vector();
    REQUIRE(one == two);
    // and close to the fp32 fused attention
    const auto fp32 = ops::scaled_dot_product_attention_forward(q, kv, kv).to_vector();
    REQUIRE(testing::max_abs_diff(one, fp32) < 0.02);
  }
  Cpu::set_num_threads(before);
  // bad shapes: the same typed errors as the fp32 op; double runs the fp32 forward
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::scaled_dot_product_attention_bf16(Tensor<float>::ones({2, 3, 4}), Tensor<float>::ones({2, 5, 3}),
                                             Tensor<float>::ones({2, 5, 6})),
      ShapeError, "(2, 3, 4)", "(2, 5, 3)");
  const auto qd = Tensor<double>::ones({2, 3, 4});
  REQUIRE(ops::scaled_dot_product_attention_bf16(qd, qd, qd).to_vector() ==
          ops::scaled_dot_product_attention_forward(qd, qd, qd).to_vector());
}

TEST_CASE("bf16 attention with an extra key and value (add_bias_kv): the bits of the concatenated keys",
          "[ops][attention]") {
  const bool kernel = detail::gemm_bf16_kernel_supported();
  if (!kernel) WARN("this CPU has no AVX512_BF16: only the loops are tested");
  Philox rng(17);
  // k and v as views with row stride 3·24 (a q | k | v projection's layout), an odd D and Lk
  const int64_t batch = 2, heads = 3, lq = 37, lk = 37, d = 23;
  const Tensor<float> q = Tensor<float>::uniform(Shape{batch, heads, lq, d}, rng, -2, 2);
  const Tensor<float> wide = Tensor<float>::uniform(Shape{batch, lk, 2, heads, d}, rng, -2, 2);
  const Tensor<float> k = wide.select(2, 0).permute({0, 2, 1, 3}),
                      v = wide.select(2, 1).permute({0, 2, 1, 3});
  const Tensor<float> ek = Tensor<float>::uniform(Shape{1, heads, 1, d}, rng, -2, 2);
  const Tensor<float> ev = Tensor<float>::uniform(Shape{1, heads, 1, d}, rng, -2, 2);
  const auto append = [&](const Tensor<float>& x, const Tensor<float>& token) {
    return ops::concat_forward(std::vector<Tensor<float>>{x, token.expand(Shape{batch, heads, 1, d})}, 2);
  };
  const Tensor<float> k_all = append(k, ek), v_all = append(v, ev);
  std::vector<float> m(size_t(lq * (lk + 1)));
  for (size_t i = 0; i < m.size(); ++i)
    m[i] = i % 7 == 3 ? -std::numeric_limits<float>::infinity() : 0.1f * float(i % 5);
  const Tensor<float> mask = Tensor<float>::from_vector(m, {lq, lk + 1});
  for (const bool loops : {true, false}) {
    if (!loops && !kernel) continue;
    for (const Tensor<float>& msk : {Tensor<float>(), mask}) {
      const auto got = ops::scaled_dot_product_attention_bf16(q, k, v, msk, 0.0, loops, ek, ev).to_vector();
      const auto want = ops::scaled_dot_product_attention_bf16(q, k_all, v_all, msk, 0.0, loops).to_vector();
      INFO((loops ? "loops" : "kernel") << (msk.defined() ? ", mask" : ""));
      REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
    }
  }
  // the packers from rows give pack_bf16_pairs's words (odd sizes, both roundings)
  for (const bool vector : {false, kernel}) {
    const std::vector<float> src = Tensor<float>::uniform(Shape{9, 21}, rng, -3, 3).to_vector();
    detail::Bf16Pairs want_kt, got_kt, want_v, got_v;
    detail::pack_bf16_pairs(src.data(), 21, 9, 1, 21, want_kt);  // Kᵀ: 21 features × 9 keys
    detail::pack_bf16_pairs_kt(
        21, 9, [&](int64_t j) { return src.data() + j * 21; }, vector, got_kt);
    detail::pack_bf16_pairs(src.data(), 9, 21, 21, 1, want_v);  // V: 9 keys × 21 features
    detail::pack_bf16_pairs_v(
        9, 21, [&](int64_t p) { return src.data() + p * 21; }, vector, got_v);
    REQUIRE((got_kt.ld == want_kt.ld && got_kt.words == want_kt.words));
    REQUIRE((got_v.ld == want_v.ld && got_v.words == want_v.words));
  }
  // the fp32 fallback (double) concatenates: the fp32 forward of the concatenated keys
  const Tensor<double> qd = q.cast<double>(), kd = k.cast<double>(), vd = v.cast<double>();
  REQUIRE(
      ops::scaled_dot_product_attention_bf16(qd, kd, vd, Tensor<double>(), 0.0, false, ek.cast<double>(),
                                             ev.cast<double>())
          .to_vector() ==
      ops::scaled_dot_product_attention_forward(qd, k_all.cast<double>(), v_all.cast<double>()).to_vector());
  // both tokens or neither; (..., 1, D)
  REQUIRE_THROWS_AS(ops::scaled_dot_product_attention_bf16(q, k, v, Tensor<float>(), 0.0, false, ek),
                    ValueError);
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      ops::scaled_dot_product_attention_bf16(q, k, v, Tensor<float>(), 0.0, false, ek, q), ShapeError,
      "extra_v");
}

TEST_CASE("fp32 attention: fp64 reference within the fp32 bound, tile edges; 1 vs 2 threads",
          "[ops][attention]") {
  // the fused fp32 forward against fp64 of the same fp32 inputs (check_bf16_attention's bound
  // without P's rounding), on the query blocks' and key tiles' edges, odd D, three key tiles
  struct Case {
    int64_t batch, lq, lk, d, dv;
  };
  for (const Case& c : {Case{1, 1, 1, 1, 1}, Case{2, 7, 5, 3, 6}, Case{1, 70, 67, 64, 17},
                        Case{3, 13, 81, 48, 48}, Case{1, 65, 1027, 33, 80}, Case{2, 5, 130, 80, 64}})
    check_bf16_attention(c.batch, c.lq, c.lk, c.d, c.dv, false, c.lq * 7 + c.lk, false);
  const int before = Cpu::num_threads();
  Philox rng(6);
  const Tensor<float> q = Tensor<float>::uniform(Shape{3, 2, 90, 32}, rng, -1, 1);
  const Tensor<float> kv = Tensor<float>::uniform(Shape{3, 2, 600, 32}, rng, -1, 1);
  Cpu::set_num_threads(1);
  const auto one = ops::scaled_dot_product_attention_forward(q, kv, kv).to_vector();
  Cpu::set_num_threads(2);
  const auto two = ops::scaled_dot_product_attention_forward(q, kv, kv).to_vector();
  Cpu::set_num_threads(before);
  REQUIRE(one == two);
}
