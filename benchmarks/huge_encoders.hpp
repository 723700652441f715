// benchmarks/huge_encoders.hpp — what the benchmarks of the huge encoders share: random weights
// written fast, and a batch of inputs of the native size (bench_encoders, bench_dist).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bindery/core/tensor.hpp"
#include "bindery/models/imagebind/encoder.hpp"

namespace bench_huge {

using bindery::Cpu;
using bindery::Philox;
using bindery::Shape;
using Tensor = bindery::Tensor<float, Cpu>;
using Encoder = bindery::models::imagebind::Encoder<float, Cpu>;
namespace ib = bindery::models::imagebind;

/// Fills every parameter without Philox's per-element cost (random init of the huge vision trunk
/// takes ~25 s): rank-1 weights (LayerNorm) 1, rank-1 biases 0, everything else a 64 Ki block of
/// N(0, 0.02) values repeated. Speed does not depend on the values as long as they stay finite and
/// normal; these keep the activations of every block O(1).
inline void fill_parameters(Encoder& encoder) {
  Philox rng(7);
  const Tensor block = Tensor::normal({int64_t(1) << 16}, rng, 0.0, 0.02);
  const float* src = block.data();
  for (const auto& [name, p] : encoder.named_parameters()) {
    float* dst = p.value().data();
    const int64_t n = p.numel();
    const bool ends_weight = name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0;
    const bool ends_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (p.rank() == 1 && (ends_weight || ends_bias)) {
      const float v = ends_weight ? 1.0f : 0.0f;
      for (int64_t i = 0; i < n; ++i) dst[i] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i & ((int64_t(1) << 16) - 1)];
    }
  }
}

/// A batch of native-size inputs: values ~ N(0, 1) or CLIP-like token ids (start token, words,
/// end-of-text 49407 at a different position per sample, zeros after).
inline ib::ModalityInput<float, Cpu> make_input(const ib::EncoderConfig& c, int64_t batch) {
  if (c.stem == ib::StemKind::kTokens) {
    const int64_t len = c.context_length();
    std::vector<int64_t> ids(static_cast<size_t>(batch * len), 0);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t eos = std::min<int64_t>(len - 1, 8 + 5 * b);
      ids[size_t(b * len)] = 49406;
      for (int64_t t = 1; t < eos; ++t) ids[size_t(b * len + t)] = (1000 + 37 * t + 101 * b) % 49000;
      ids[size_t(b * len + eos)] = 49407;
    }
    return bindery::Tensor<int64_t, Cpu>::from_vector(ids, Shape{batch, len});
  }
  std::vector<int64_t> shape{batch};
  if (c.stem == ib::StemKind::kVideoPatches) {
    shape.insert(shape.end(), {c.input_shape[0], c.input_shape[2], c.input_shape[3]});  // an image
  } else {
    shape.insert(shape.end(), c.input_shape.begin(), c.input_shape.end());
  }
  Philox rng(11);
  return Tensor::normal(Shape(shape), rng);
}

}  // namespace bench_huge
