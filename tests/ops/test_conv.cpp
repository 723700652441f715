#include "test_util.hpp"
#include "test_conv_bodies.hpp"

#include <array>

using namespace bindery;
using bindery::testing::random_var;
using bindery::testing::require_gradcheck;
using bindery::testing::require_values;

namespace {

/// Direct 3-D cross-correlation, one output element at a time, in double: the independent reference.
/// x (N, C, T, H, W), w (O, C, kt, kh, kw), bias (O) or empty -> values of (N, O, T', H', W').
struct NaiveConv {
  std::vector<double> values;
  Shape shape;
};

NaiveConv naive_conv3d(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                       const Shape& ws, const std::vector<double>& bias, std::array<int64_t, 3> stride,
                       std::array<int64_t, 3> pad) {
  const int64_t n_batch = xs[0], channels = xs[1], out_ch = ws[0];
  int64_t out[3];
  for (int d = 0; d < 3; ++d) out[d] = (xs[d + 2] + 2 * pad[d] - ws[d + 2]) / stride[d] + 1;
  NaiveConv r;
  r.shape = Shape{n_batch, out_ch, out[0], out[1], out[2]};
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t o = 0; o < out_ch; ++o)
      for (int64_t ot = 0; ot < out[0]; ++ot)
        for (int64_t oh = 0; oh < out[1]; ++oh)
          for (int64_t ow = 0; ow < out[2]; ++ow) {
            double acc = bias.empty() ? 0.0 : bias[static_cast<size_t>(o)];
            for (int64_t c = 0; c < channels; ++c)
              for (int64_t kt = 0; kt < ws[2]; ++kt)
                for (int64_t kh = 0; kh < ws[3]; ++kh)
                  for (int64_t kw = 0; kw < ws[4]; ++kw) {
                    const int64_t t = ot * stride[0] - pad[0] + kt;
                    const int64_t h = oh * stride[1] - pad[1] + kh;
                    const int64_t ww = ow * stride[2] - pad[2] + kw;
                    if (t < 0 || t >= xs[2] || h < 0 || h >= xs[3] || ww < 0 || ww >= xs[4]) continue;
                    acc +=
                        x[static_cast<size_t>((((n * channels + c) * xs[2] + t) * xs[3] + h) * xs[4] + ww)] *
                        w[static_cast<size_t>((((o * channels + c) * ws[2] + kt) * ws[3] + kh) * ws[4] + kw)];
                  }
            r.values.push_back(acc);
          }
  return r;
}

template <class T>
std::vector<double> host(const Tensor<T>& t) {
  std::vector<double> out;
  for (T v : t.to_vector()) out.push_back(static_cast<double>(v));
  return out;
}

/// conv2d through bindery vs the naive loop (2-D as 3-D with T = 1).
template <class T>
void check_conv2d(const Shape& xs, const Shape& ws, bool with_bias, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> pad, const Shape& expected_shape, double tolerance) {
  Philox rng(xs.numel() + ws.numel());
  const auto x = Tensor<T>::uniform(xs, rng, -1, 1);
  const auto w = Tensor<T>::uniform(ws, rng, -1, 1);
  const auto b = with_bias ? Tensor<T>::uniform({ws[0]}, rng, -1, 1) : Tensor<T>();
  const Tensor<T> y = ops::conv2d_forward(x, w, b, stride, pad);
  REQUIRE(y.shape() == expected_shape);
  const NaiveConv ref = naive_conv3d(
      host(x), Shape{xs[0], xs[1], 1, xs[2], xs[3]}, host(w), Shape{ws[0], ws[1], 1, ws[2], ws[3]},
      with_bias ? host(b) : std::vector<double>{}, {1, stride[0], stride[1]}, {0, pad[0], pad[1]});
  INFO("x " << xs << ", w " << ws << ", stride " << stride[0] << "x" << stride[1] << ", pad " << pad[0] << "x"
            << pad[1]);
  require_values(y, expected_shape, ref.values, tolerance);
}

template <class T>
void check_conv3d(const Shape& xs, const Shape& ws, bool with_bias, std::array<int64_t, 3> stride,
                  std::array<int64_t, 3> pad, const Shape& expected_shape, double tolerance) {
  Philox rng(xs.numel() * 3 + ws.numel());
  const auto x = Tensor<T>::uniform(xs, rng, -1, 1);
  const auto w = Tensor<T>::uniform(ws, rng, -1, 1);
  const auto b = with_bias ? Tensor<T>::uniform({ws[0]}, rng, -1, 1) : Tensor<T>();
  const Tensor<T> y = ops::conv3d_forward(x, w, b, stride, pad);
  const NaiveConv ref =
      naive_conv3d(host(x), xs, host(w), ws, with_bias ? host(b) : std::vector<double>{}, stride, pad);
  REQUIRE(ref.shape == expected_shape);
  INFO("x " << xs << ", w " << ws);
  require_values(y, expected_shape, ref.values, tolerance);
}

}  // namespace

TEST_CASE("conv2d forward matches a direct loop", "[ops][conv]") {
  // stride < kernel (overlapping windows), with bias
  check_conv2d<double>({2, 3, 7, 8}, {4, 3, 3, 3}, true, {2, 2}, {0, 0}, {2, 4, 3, 3}, 1e-12);
  // padding, stride 1
  check_conv2d<double>({1, 2, 5, 5}, {3, 2, 3, 3}, true, {1, 1}, {1, 1}, {1, 3, 5, 5}, 1e-12);
  // kernel == stride (patch embedding), no bias
  check_conv2d<double>({2, 3, 8, 12}, {5, 3, 4, 4}, false, {4, 4}, {0, 0}, {2, 5, 2, 3}, 1e-12);
  // anisotropic kernel, stride and padding; padding as wide as the kernel (all-padding windows)
  check_conv2d<double>({1, 2, 6, 9}, {2, 2, 2, 3}, true, {1, 2}, {2, 1}, {1, 2, 9, 5}, 1e-12);
  // the ImageBind audio stem: kernel 16, stride 10 on a 1×128×204 spectrogram -> 12×19 patches
  check_conv2d<float>({1, 1, 128, 204}, {8, 1, 16, 16}, false, {10, 10}, {0, 0}, {1, 8, 12, 19}, 2e-5);
  // float with several batch entries (the per-sample GEMM path)
  check_conv2d<float>({5, 3, 9, 9}, {6, 3, 3, 3}, true, {2, 2}, {1, 1}, {5, 6, 5, 5}, 2e-5);
}

TEST_CASE("conv3d forward matches a direct loop", "[ops][conv]") {
  check_conv3d<double>({2, 2, 4, 5, 6}, {3, 2, 2, 3, 3}, true, {1, 2, 2}, {0, 1, 1}, {2, 3, 3, 3, 3}, 1e-12);
  check_conv3d<double>({1, 3, 3, 4, 4}, {2, 3, 3, 2, 2}, false, {2, 2, 2}, {1, 0, 0}, {1, 2, 2, 2, 2}, 1e-12);
  // the ImageBind vision stem: Conv3d kernel = stride = (2, 14, 14), no bias, (1, 3, 2, 224, 224)
  // -> (1, O, 1, 16, 16) (O = 1280 in the real model; 4 here to keep the reference loop short)
  check_conv3d<float>({1, 3, 2, 224, 224}, {4, 3, 2, 14, 14}, false, {2, 14, 14}, {0, 0, 0},
                      {1, 4, 1, 16, 16}, 5e-5);
}

TEST_CASE("conv rejects mismatched shapes", "[ops][conv][errors]") {
  const Var<float> x(Tensor<float>::zeros({2, 3, 8, 8}));
  const Var<float> w_bad_c(Tensor<float>::zeros({4, 2, 3, 3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::conv2d(x, w_bad_c, {}, {1, 1}), ShapeError, "(2, 3, 8, 8)",
                                  "(4, 2, 3, 3)", "channels");
  const Var<float> small(Tensor<float>::zeros({1, 1, 4, 4}));
  const Var<float> big_kernel(Tensor<float>::zeros({1, 1, 5, 5}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::conv2d(small, big_kernel, {}, {1, 1}), ShapeError, "(1, 1, 4, 4)",
                                  "(1, 1, 5, 5)", "(4, 4)");
  REQUIRE(ops::conv2d(small, big_kernel, {}, {1, 1}, {1, 1}).shape() == Shape{1, 1, 2, 2});  // padded: fits
  const Var<float> w(Tensor<float>::zeros({4, 3, 3, 3}));
  const Var<float> bias_bad(Tensor<float>::zeros({3}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::conv2d(x, w, bias_bad, {1, 1}), ShapeError, "(3,)", "(4, 3, 3, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::conv3d(x, w, {}, {1, 1, 1}), ShapeError, "(2, 3, 8, 8)",
                                  "(4, 3, 3, 3)", "(N, C, T, H, W)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::conv2d(x, w, {}, {0, 1}), ValueError, "stride", "(0, 1)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ops::conv2d_forward(x.value(), w_bad_c.value(), Tensor<float>(), {1, 1}),
                                  ShapeError, "(2, 3, 8, 8)", "(4, 2, 3, 3)");
}
