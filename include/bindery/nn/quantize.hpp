// bindery/nn/quantize.hpp — inference weights for a whole module tree: fp32 packed, bf16 or int8.
//
//   auto model = ib::load_imagebind_huge(...);        // fp32 checkpoint
//   nn::freeze(*model, nn::WeightPrecision::kFloat32);  // packed fp32 weights, inference only
//   nn::quantize(*model, nn::WeightPrecision::kInt8);   // or: int8 weights (fp32 would be a no-op)
//
// Converts the weight of every Linear and the in/out projections of every MultiheadAttention
// (nn/lowp_weight.hpp), frees their (out, in) copies, and makes the tree inference-only: eval mode
// and no parameter requires a gradient. Layer norms, embeddings, convolutions, biases and everything
// computed between the GEMMs stay fp32. freeze() at fp32 keeps every value and only changes the
// layout (and the fp32 summation order: the same error bound); quantize() is freeze() for bf16 and
// int8 and leaves an fp32 tree trainable.
#pragma once

#include <cstdint>
#include <type_traits>
#include <unordered_set>

#include "bindery/backend/cpu.hpp"
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

/// Converts every Linear and MultiheadAttention under `root` (each once, shared ones included) to
/// `precision`'s inference weights and puts the tree in eval mode with gradients off. The memory
/// peak is the tree plus one converted layer (each freed weight is returned to the system before
/// the next is converted). Throws ValueError for a tree that is not float on the CPU or holds a
/// layer that is already frozen.
template <class T, class B>
QuantizeReport freeze(Module<T, B>& root, WeightPrecision precision) {
  QuantizeReport report;
  root.eval();
  root.set_requires_grad(false);
  auto release = [] {
    if constexpr (std::is_same_v<B, Cpu>) Cpu::empty_cache();
  };
  std::unordered_set<const Module<T, B>*> done;  // attention out_proj layers, converted with it
  for (auto& [name, module] : root.named_modules()) {
    if (auto* attention = dynamic_cast<MultiheadAttention<T, B>*>(module)) {
      report.weights += attention->in_proj_weight().numel() + attention->out_proj().weight().numel();
      attention->freeze(precision);
      release();
      report.bytes += static_cast<int64_t>(attention->in_proj_bytes() + attention->out_proj().weight_bytes());
      report.layers += 1;
      done.insert(&attention->out_proj());
    }
  }
  for (auto& [name, module] : root.named_modules()) {
    auto* linear = dynamic_cast<Linear<T, B>*>(module);
    if (linear == nullptr || done.count(module)) continue;
    report.weights += linear->weight().numel();
    linear->freeze(precision);
    release();
    report.bytes += static_cast<int64_t>(linear->weight_bytes());
    report.layers += 1;
  }
  return report;
}

/// freeze() to bf16 or int8. fp32 changes nothing (and keeps training mode).
template <class T, class B>
QuantizeReport quantize(Module<T, B>& root, WeightPrecision precision) {
  if (precision == WeightPrecision::kFloat32) return {};
  return freeze(root, precision);
}

}  // namespace bindery::nn
