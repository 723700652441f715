// bindery/nn/init.hpp — parameter initializers that reproduce torch.nn.init, on a Philox stream.
//
// Every module takes a seed and draws its initial weights from Philox streams derived from it, so a
// model built twice with the same seeds has bit-identical weights on every backend. A module built
// without a seed takes the next one of its thread's seed sequence (nn/seed.hpp: nn::SeedScope). The numbers
// are not PyTorch's (a different generator); the DISTRIBUTIONS are, which is what training depends on.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>

#include "bindery/core/tensor.hpp"
#include "bindery/nn/seed.hpp"

namespace bindery::nn::init {

/// (fan_in, fan_out) as torch.nn.init._calculate_fan_in_and_fan_out: shape (out, in, k...) has
/// fan_in = in * prod(k) and fan_out = out * prod(k); rank >= 2 required.
inline std::pair<int64_t, int64_t> fan_in_and_out(const Shape& shape) {
  BINDERY_CHECK(shape.rank() >= 2, ShapeError, "init: fan in/out needs a shape of rank >= 2, got ", shape);
  int64_t receptive = 1;
  for (int64_t d = 2; d < shape.rank(); ++d) receptive *= shape[d];
  return {shape[1] * receptive, shape[0] * receptive};
}

/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch's default for nn.Linear and nn.ConvNd weights
/// (kaiming_uniform_ with a = sqrt(5)) and for their biases (same bound, fan_in of the weight).
template <class T, class B>
Tensor<T, B> default_uniform(const Shape& shape, int64_t fan_in, Philox& rng) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return Tensor<T, B>::uniform(shape, rng, -bound, bound);
}

/// torch.nn.init.xavier_uniform_: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
template <class T, class B>
Tensor<T, B> xavier_uniform(const Shape& shape, Philox& rng) {
  const auto [fan_in, fan_out] = fan_in_and_out(shape);
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return Tensor<T, B>::uniform(shape, rng, -bound, bound);
}

/// torch.nn.init.xavier_normal_: N(0, sqrt(2 / (fan_in + fan_out))).
template <class T, class B>
Tensor<T, B> xavier_normal(const Shape& shape, Philox& rng) {
  const auto [fan_in, fan_out] = fan_in_and_out(shape);
  return Tensor<T, B>::normal(shape, rng, 0.0, std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

/// timm's trunc_normal_(std): N(0, std) truncated to the ABSOLUTE interval [-2, 2] (ViT init).
template <class T, class B>
Tensor<T, B> trunc_normal(const Shape& shape, Philox& rng, double std = 0.02) {
  return Tensor<T, B>::truncated_normal(shape, rng, 0.0, std, -2.0, 2.0);
}

}  // namespace bindery::nn::init
