// bindery/nn/conv.hpp — Conv2d and Conv3d (torch.nn.Conv2d / Conv3d, no dilation, no groups).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "bindery/nn/init.hpp"
#include "bindery/nn/module.hpp"
#include "bindery/ops/conv.hpp"

namespace bindery::nn {

/// Options of ConvNd: `nn::Conv2d<float>(3, 8, {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}})`.
template <size_t N>
struct ConvOptions {
  std::array<int64_t, N> kernel{};   // required: every extent > 0
  std::array<int64_t, N> stride{};   // required: every extent > 0
  std::array<int64_t, N> padding{};  // zeros on each side
  bool bias = true;
  /// Init seed; unset: the next seed of this thread's sequence (nn/seed.hpp).
  std::optional<uint64_t> seed = std::nullopt;
};

/// N-dimensional convolution (N = 2 or 3). Parameters: `weight` (out, in, k_1..k_N) and, when
/// `bias`, `bias` (out). Init as torch: both U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
/// fan_in = in * prod(k), drawn from Philox(seed). Use the aliases Conv2d / Conv3d.
template <class T, class B, size_t N>
class ConvNd : public Module<T, B> {
  static_assert(N == 2 || N == 3, "ConvNd: only 2-D and 3-D convolutions");

 public:
  using Extents = std::array<int64_t, N>;

  ConvNd(int64_t in_channels, int64_t out_channels, const ConvOptions<N>& options)
      : in_channels_(in_channels), stride_(options.stride), padding_(options.padding) {
    const Extents& kernel = options.kernel;
    const Extents& stride = options.stride;
    const Extents& padding = options.padding;
    bool valid = in_channels > 0 && out_channels > 0;
    std::vector<int64_t> dims{out_channels, in_channels};
    int64_t fan_in = in_channels;
    for (size_t i = 0; i < N; ++i) {
      valid = valid && kernel[i] > 0 && stride[i] > 0 && padding[i] >= 0;
      dims.push_back(kernel[i]);
      fan_in *= kernel[i];
    }
    BINDERY_CHECK(valid, ValueError, "Conv", N, "d: channels (", in_channels, " -> ", out_channels,
                  "), kernel and stride must be positive and padding non-negative");
    Philox rng(resolve_seed(options.seed));
    weight_ = this->register_parameter("weight", init::default_uniform<T, B>(Shape(dims), fan_in, rng));
    if (options.bias)
      bias_ = this->register_parameter("bias", init::default_uniform<T, B>(Shape{out_channels}, fan_in, rng));
  }

  /// The old positional form: the same layer as the options form with the same values.
  ConvNd(int64_t in_channels, int64_t out_channels, Extents kernel, Extents stride, Extents padding = {},
         bool bias = true, std::optional<uint64_t> seed = std::nullopt)
      : ConvNd(in_channels, out_channels, ConvOptions<N>{kernel, stride, padding, bias, seed}) {}

  /// x: (B, in, S_1..S_N) -> (B, out, (S_i + 2 p_i - k_i) / s_i + 1 ...).
  Var<T, B> forward(const Var<T, B>& x) {
    BINDERY_CHECK(x.rank() == static_cast<int64_t>(N) + 2 && x.size(1) == in_channels_, ShapeError, "Conv", N,
                  "d: input of shape ", x.shape(), " must be (B, ", in_channels_, ", ...) of rank ", N + 2,
                  " (weight of shape ", weight_.shape(), ")");
    if constexpr (N == 2) {
      return ops::conv2d(x, weight_, bias_, stride_, padding_);
    } else {
      return ops::conv3d(x, weight_, bias_, stride_, padding_);
    }
  }

  Var<T, B> weight() const { return weight_; }
  /// Undefined without bias.
  Var<T, B> bias() const { return bias_; }
  const Extents& stride() const { return stride_; }
  const Extents& padding() const { return padding_; }

 private:
  int64_t in_channels_;
  Extents stride_, padding_;
  Var<T, B> weight_, bias_;
};

template <class T, class B = Cpu>
using Conv2d = ConvNd<T, B, 2>;
template <class T, class B = Cpu>
using Conv3d = ConvNd<T, B, 3>;

}  // namespace bindery::nn
