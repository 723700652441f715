// bindery/nn/quantize.hpp — bf16 / int8 inference weights for a whole module tree.
//
//   auto model = ib::load_imagebind_huge(...);          // fp32 checkpoint
//   nn::quantize(*model, nn::WeightPrecision::kInt8);    // every Linear + attention projection
//
// Converts the weight of every Linear and the in/out projections of every MultiheadAttention
// (nn/lowp_weight.hpp), frees their fp32 copies, and makes the tree inference-only: eval mode and
// no parameter requires a gradient. Layer norms, embeddings, convolutions, biases and everything
// computed between the GEMMs stay fp32.
#pragma once

#include <cstdint>
#include <unordered_set>

#include "bindery/nn/attention.hpp"
#include "bindery/nn/linear.hpp"
#include "bindery/nn/module.hpp"

namespace bindery::nn {

/// What quantize() converted.
struct QuantizeReport {
  int64_t layers = 0;   ///< Linear modules and attention modules converted
  int64_t weights = 0;  ///< fp32 weight elements freed
  int64_t bytes = 0;    ///< bytes the converted weights hold now
};

/// Quantizes every Linear and MultiheadAttention under `root` (each once, shared ones included) to
/// `precision` and puts the tree in eval mode with gradients off. fp32 changes nothing (and keeps
/// training mode). Throws ValueError for a tree that is not float on the CPU or holds a layer that
/// is already quantized.
template <class T, class B>
QuantizeReport quantize(Module<T, B>& root, WeightPrecision precision) {
  QuantizeReport report;
  if (precision == WeightPrecision::kFloat32) return report;
  root.eval();
  root.set_requires_grad(false);
  std::unordered_set<const Module<T, B>*> done;  // attention out_proj layers, converted with it
  for (auto& [name, module] : root.named_modules()) {
    if (auto* attention = dynamic_cast<MultiheadAttention<T, B>*>(module)) {
      report.weights += attention->in_proj_weight().numel() + attention->out_proj().weight().numel();
      attention->quantize(precision);
      report.bytes += static_cast<int64_t>(attention->in_proj_bytes() + attention->out_proj().weight_bytes());
      report.layers += 1;
      done.insert(&attention->out_proj());
    }
  }
  for (auto& [name, module] : root.named_modules()) {
    auto* linear = dynamic_cast<Linear<T, B>*>(module);
    if (linear == nullptr || done.count(module)) continue;
    report.weights += linear->weight().numel();
    linear->quantize(precision);
    report.bytes += static_cast<int64_t>(linear->weight_bytes());
    report.layers += 1;
  }
  return report;
}

}  // namespace bindery::nn
