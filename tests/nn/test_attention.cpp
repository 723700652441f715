#include "test_util.hpp"

#include <bindery/nn/attention.hpp>

#include <limits>

using namespace bindery;
using bindery::testing::require_values;

namespace {

template <class Pairs>
std::vector<std::string> names_of(const Pairs& pairs) {
  std::vector<std::string> names;
  for (const auto& [name, value] : pairs) names.push_back(name);
  return names;
}

/// torch.nn.MultiheadAttention from first principles, one head and one position
/// at a time, in plain loops over host vectors. query (B, Lq, D), key/value (B,
/// Lk, D), mask (Lq, Lk) or empty.
template <class T>
std::vector<double> reference_mha(nn::MultiheadAttention<T>& mha, const Tensor<T>& query,
                                  const Tensor<T>& key, const Tensor<T>& value,
                                  const std::vector<double>& mask) {
  const int64_t batch = query.size(0), lq = query.size(1), lk0 = key.size(1), d = mha.embed_dim();
  const int64_t heads = mha.num_heads(), hd = d / heads;
  const bool has_bias = mha.in_proj_bias().defined(), has_kv = mha.bias_k().defined();
  const Tensor<T> w = mha.in_proj_weight().value(), wo = mha.out_proj().weight().value();
  auto in_bias = [&](int64_t r) { return has_bias ? double(mha.in_proj_bias().value().at({r})) : 0.0; };
  auto out_bias = [&](int64_t r) { return has_bias ? double(mha.out_proj().bias().value().at({r})) : 0.0; };
  const int64_t lk = lk0 + (has_kv ? 1 : 0);
  std::vector<double> out;
  for (int64_t b = 0; b < batch; ++b) {
    // Projections: q[i][e] = Σ_j W[e][j] x[i][j] + b[e] with W's rows 0..D,
    // D..2D, 2D..3D.
    std::vector<std::vector<double>> q(lq, std::vector<double>(d)), k(lk, std::vector<double>(d)),
        v(lk, std::vector<double>(d));
    for (int64_t e = 0; e < d; ++e) {
      for (int64_t i = 0; i < lq; ++i) {
        q[i][e] = in_bias(e);
        for (int64_t j = 0; j < d; ++j) q[i][e] += w.at({e, j}) * query.at({b, i, j});
      }
      for (int64_t i = 0; i < lk0; ++i) {
        k[i][e] = in_bias(d + e);
        v[i][e] = in_bias(2 * d + e);
        for (int64_t j = 0; j < d; ++j) {
          k[i][e] += w.at({d + e, j}) * key.at({b, i, j});
          v[i][e] += w.at({2 * d + e, j}) * value.at({b, i, j});
        }
      }
      if (has_kv) {  // the learned token, appended after projection
        k[lk0][e] = mha.bias_k().value().at({0, 0, e});
        v[lk0][e] = mha.bias_v().value().at({0, 0, e});
      }
    }
    std::vector<std::vector<double>> o(lq, std::vector<double>(d, 0.0));
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < lq; ++i) {
        std::vector<double> s(lk);
        double top = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < lk; ++j) {
          s[j] = 0;
          for (int64_t e = h * hd; e < (h + 1) * hd; ++e) s[j] += q[i][e] * k[j][e];
          s[j] /= std::sqrt(double(hd));
          if (!mask.empty() && j < lk0) s[j] += mask[i * lk0 + j];  // the bias_k column gets 0
          top = std::max(top, s[j]);
        }
        double z = 0;
        for (int64_t j = 0; j < lk; ++j) z += std::exp(s[j] - top);
        for (int64_t j = 0; j < lk; ++j) {
          const double p = std::exp(s[j] - top) / z;
          for (int64_t e = h * hd; e < (h + 1) * hd; ++e) o[i][e] += p * v[j][e];
        }
      }
    }
    for (int64_t i = 0; i < lq; ++i) {
      for (int64_t f = 0; f < d; ++f) {
        double acc = out_bias(f);
        for (int64_t e = 0; e < d; ++e) acc += wo.at({f, e}) * o[i][e];
        out.push_back(acc);
      }
    }
  }
  return out;
}

/// Parameters drawn away from their init (zero biases would hide bias bugs).
template <class T>
void randomize(nn::Module<T>& module, uint64_t seed) {
  for (auto [name, var] : module.named_parameters()) {
    Philox rng(seed++);
    var.assign(Tensor<T>::uniform(var.shape(), rng, -0.8, 0.8));
  }
}

}  // namespace

TEST_CASE("MultiheadAttention has torch's parameter names and shapes", "[nn][attention]") {
  nn::MultiheadAttention<float> plain(8, 2);
  const auto params = plain.named_parameters();
  REQUIRE(names_of(params) ==
          std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
  REQUIRE(params[0].second.shape() == Shape{24, 8});
  REQUIRE(params[1].second.shape() == Shape{24});
  REQUIRE(params[2].second.shape() == Shape{8, 8});
  REQUIRE(params[3].second.shape() == Shape{8});
  require_values(plain.in_proj_bias().value(), Shape{24}, std::vector<double>(24, 0.0));
  require_values(plain.out_proj().bias().value(), Shape{8}, std::vector<double>(8, 0.0));

  nn::MultiheadAttention<float> with_kv(8, 2, true, /*add_bias_kv=*/true);
  REQUIRE(names_of(with_kv.named_parameters()) ==
          std::vector<std::string>{"in_proj_weight", "in_proj_bias", "bias_k", "bias_v", "out_proj.weight",
                                   "out_proj.bias"});
  REQUIRE(with_kv.bias_k().shape() == Shape{1, 1, 8});
  REQUIRE(with_kv.bias_v().shape() == Shape{1, 1, 8});

  nn::MultiheadAttention<float> no_bias(8, 4, /*bias=*/false);
  REQUIRE(names_of(no_bias.named_parameters()) ==
          std::vector<std::string>{"in_proj_weight", "out_proj.weight"});
  // xavier_uniform on (3D, D): bound sqrt(6 / (4D)).
  double largest = 0;
  for (float w : plain.in_proj_weight().value().to_vector())
    largest = std::max(largest, double(std::fabs(w)));
  REQUIRE(largest <= std::sqrt(6.0 / 32.0));
  REQUIRE(largest > 0.8 * std::sqrt(6.0 / 32.0));
}

TEST_CASE("MultiheadAttention forward matches a per-head reference", "[nn][attention]") {
  const int64_t batch = 2, lq = 3, lk = 4, d = 6, heads = 3;
  Var<double> query = testing::random_var(Shape{batch, lq, d}, 1, -1, 1, false);
  Var<double> key = testing::random_var(Shape{batch, lk, d}, 2, -1, 1, false);
  Var<double> value = testing::random_var(Shape{batch, lk, d}, 3, -1, 1, false);
  Var<double> mask = testing::random_var(Shape{lq, lk}, 4, -2, 2, false);
  const std::vector<double> mask_host = mask.value().to_vector();
  for (bool add_bias_kv : {false, true}) {
    for (bool bias : {true, false}) {
      DYNAMIC_SECTION("add_bias_kv " << add_bias_kv << ", bias " << bias) {
        nn::MultiheadAttention<double> mha(d, heads, bias, add_bias_kv, 0.0, 5);
        randomize(mha, 100);
        // Cross-attention (separate projections), with and without a mask.
        require_values(mha.forward(query, key, value).value(), Shape{batch, lq, d},
                       reference_mha(mha, query.value(), key.value(), value.value(), {}), 1e-12);
        require_values(mha.forward(query, key, value, mask).value(), Shape{batch, lq, d},
                       reference_mha(mha, query.value(), key.value(), value.value(), mask_host), 1e-12);
        // Self-attention (the fused projection path).
        Var<double> x = testing::random_var(Shape{batch, lk, d}, 6, -1, 1, false);
        Var<double> square = testing::random_var(Shape{lk, lk}, 7, -2, 2, false);
        require_values(mha.forward(x, square).value(), Shape{batch, lk, d},
                       reference_mha(mha, x.value(), x.value(), x.value(), square.value().to_vector()),
                       1e-12);
      }
    }
  }
}

TEST_CASE(
    "MultiheadAttention masks: causal -inf, per-batch key padding, (B*H, "
    "Lq, Lk), unbatched",
    "[nn][attention]") {
  const int64_t batch = 2, length = 3, d = 4, heads = 2;
  nn::MultiheadAttention<double> mha(d, heads, true, true, 0.0, 9);
  randomize(mha, 200);
  Var<double> x = testing::random_var(Shape{batch, length, d}, 11, -1, 1, false);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> causal{0, -inf, -inf, 0, 0, -inf, 0, 0, 0};
  Var<double> causal_mask(Tensor<double>::from_vector(causal, {length, length}));
  const std::vector<double> expected = reference_mha(mha, x.value(), x.value(), x.value(), causal);
  require_values(mha.forward(x, causal_mask).value(), Shape{batch, length, d}, expected, 1e-12);

  // The same mask given per (batch, head) as torch's (B*H, L, L) and as (B, H,
  // L, L).
  Var<double> per_head(Tensor<double>::from_vector(causal, {1, 1, length, length})
                           .expand({batch, heads, length, length})
                           .contiguous());
  require_values(mha.forward(x, per_head).value(), Shape{batch, length, d}, expected, 1e-12);
  require_values(mha.forward(x, ops::reshape(per_head, {batch * heads, length, length})).value(),
                 Shape{batch, length, d}, expected, 1e-12);

  // Key padding as an additive (B, 1, 1, Lk) mask: sample 1 ignores its last
  // key.
  Var<double> padding(Tensor<double>::from_vector({0, 0, 0, 0, 0, -inf}, {batch, 1, 1, length}));
  const Tensor<double> out = mha.forward(x, padding).value();
  const std::vector<double> none = reference_mha(mha, x.value(), x.value(), x.value(), {});
  const std::vector<double> padded =
      reference_mha(mha, x.value(), x.value(), x.value(), {0, 0, -inf, 0, 0, -inf, 0, 0, -inf});
  std::vector<double> mixed(none.begin(), none.begin() + length * d);
  mixed.insert(mixed.end(), padded.begin() + length * d, padded.end());
  require_values(out, Shape{batch, length, d}, mixed, 1e-12);

  // Unbatched (L, D) input equals the first batch item.
  const Tensor<double> one = mha.forward(ops::select(x, 0, 0), causal_mask).value();
  require_values(one, Shape{length, d}, std::vector<double>(expected.begin(), expected.begin() + length * d),
                 1e-12);
}

TEST_CASE("MultiheadAttention gradcheck of every input and parameter", "[nn][attention]") {
  const int64_t batch = 2, lq = 2, lk = 3, d = 4, heads = 2;
  for (bool add_bias_kv : {false, true}) {
    for (bool with_mask : {false, true}) {
      DYNAMIC_SECTION("add_bias_kv " << add_bias_kv << ", mask " << with_mask) {
        nn::MultiheadAttention<double> mha(d, heads, true, add_bias_kv, 0.0, 3);
        randomize(mha, 300);
        std::vector<Var<double>> inputs{testing::random_var(Shape{batch, lq, d}, 21),
                                        testing::random_var(Shape{batch, lk, d}, 22),
                                        testing::random_var(Shape{batch, lk, d}, 23),
                                        testing::random_var(Shape{lq, lk}, 24, -1, 1, with_mask)};
        for (const auto& p : mha.parameters()) inputs.push_back(p);
        testing::require_gradcheck<Cpu>(
            [&](const std::vector<Var<double>>& in) {
              return mha.forward(in[0], in[1], in[2], with_mask ? in[3] : Var<double>());
            },
            inputs);
        // Self-attention path: one input used as query, key and value.
        std::vector<Var<double>> self_inputs{testing::random_var(Shape{batch, lk, d}, 25),
                                             testing::random_var(Shape{lk, lk}, 26, -1, 1, with_mask)};
        for (const auto& p : mha.parameters()) self_inputs.push_back(p);
        testing::require_gradcheck<Cpu>(
            [&](const std::vector<Var<double>>& in) {
              return mha.forward(in[0], with_mask ? in[1] : Var<double>());
            },
            self_inputs);
      }
    }
  }
}

TEST_CASE("MultiheadAttention dropout is active in training only", "[nn][attention]") {
  nn::MultiheadAttention<double> mha(4, 2, true, false, 0.5, 1);
  Var<double> x = testing::random_var(Shape{2, 5, 4}, 1, -1, 1, false);
  const std::vector<double> train_a = mha.forward(x).value().to_vector();
  const std::vector<double> train_b = mha.forward(x).value().to_vector();
  REQUIRE(train_a != train_b);  // the dropout stream advanced
  mha.eval();
  const std::vector<double> eval = reference_mha(mha, x.value(), x.value(), x.value(), {});
  require_values(mha.forward(x).value(), Shape{2, 5, 4}, eval, 1e-12);
}

TEST_CASE("MultiheadAttention rejects bad shapes and configurations", "[nn][attention]") {
  BINDERY_REQUIRE_THROWS_WITH_ALL(nn::MultiheadAttention<float>(10, 3), ValueError, "10", "3", "divisible");
  BINDERY_REQUIRE_THROWS_WITH_ALL(nn::MultiheadAttention<float>(0, 1), ValueError, "embed_dim 0");
  nn::MultiheadAttention<float> mha(8, 2);
  Var<float> x(Tensor<float>::zeros({2, 3, 8}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(mha.forward(Var<float>(Tensor<float>::zeros({2, 3, 6}))), ShapeError,
                                  "(2, 3, 6)", "embed_dim 8");
  BINDERY_REQUIRE_THROWS_WITH_ALL(mha.forward(x, Var<float>(Tensor<float>::zeros({2, 4, 8})), x), ShapeError,
                                  "(2, 3, 8)", "(2, 4, 8)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(mha.forward(x, Var<float>(Tensor<float>::zeros({3, 4}))), ShapeError,
                                  "(3, 4)", "(2, 2, 3, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(mha.forward(Var<float>(Tensor<float>::zeros({8}))), ShapeError, "(8,)");
}

TEST_CASE("MultiheadAttention in float matches the double reference", "[nn][attention]") {
  nn::MultiheadAttention<float> mha(8, 4, true, true, 0.0, 12);
  randomize(mha, 400);
  Var<float> x = testing::random_var<float>(Shape{2, 5, 8}, 13, -1, 1, false);
  Var<float> mask = testing::random_var<float>(Shape{5, 5}, 14, -1, 1, false);
  std::vector<double> mask_host;
  for (float m : mask.value().to_vector()) mask_host.push_back(m);
  require_values(mha.forward(x, mask).value(), Shape{2, 5, 8},
                 reference_mha(mha, x.value(), x.value(), x.value(), mask_host), 1e-5);
}
