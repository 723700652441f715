// bindery/nn/lowp_io.hpp — bf16 / int8 weights on disk: which weights a module converts, writing them
// as safetensors, and reading them back (or converting fp32 ones) while a checkpoint streams in.
//
//   nn::quantize(*model, nn::WeightPrecision::kInt8);
//   nn::save_lowp_safetensors(*model, "imagebind_huge.int8.safetensors");   // bindery-embed convert
//   auto m = ib::ImageBindModel<float>::from_checkpoint("imagebind_huge.int8.safetensors", config);
//
// The file is a safetensors file; a reader that knows nothing of bindery sees every tensor:
//   - a converted weight keeps its key and its (out, in) shape, as BF16 (bf16) or as I8 (int8), the
//     int8 one with its per-row scales as F32 (out,) under "<key>_scale": W[j] ≈ scale[j]·q[j], q in
//     [-127, 127] (symmetric, per output channel);
//   - every other tensor is F32, as in the fp32 checkpoint;
//   - "__metadata__" holds "bindery.weights": "bf16" or "int8".
// The converted weights are the ones nn::quantize converts: the "weight" of every Linear and the
// "in_proj_weight" of every MultiheadAttention (its out_proj is a Linear). Loading such a file builds
// the bf16 / int8 weights straight from its bytes: no fp32 copy of them is ever made.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bindery/io/safetensors.hpp"
#include "bindery/nn/attention.hpp"
#include "bindery/nn/linear.hpp"
#include "bindery/nn/lowp_weight.hpp"
#include "bindery/nn/module.hpp"

namespace bindery::nn {

/// The suffix of an int8 weight's scales: "<key>_scale".
inline constexpr const char* kLowpScaleSuffix = "_scale";
/// The metadata key naming the file's low precision ("bf16" or "int8").
inline constexpr const char* kLowpMetadataKey = "bindery.weights";

using LowpBlocks = std::vector<std::shared_ptr<const LowpWeight>>;

/// A weight that nn::quantize converts: its checkpoint shape and how to read or install its
/// converted form (blocks of rows: 1, or q, k, v for in_proj_weight).
struct LowpSlot {
  int64_t rows = 0, cols = 0;  ///< the (out, in) shape in the checkpoint
  int64_t blocks = 1;          ///< equal blocks of rows, each its own LowpWeight
  std::function<void(LowpBlocks)> install;
  std::function<LowpBlocks()> current;  ///< empty while the weight is fp32
};

/// Every convertible weight under `root`, by state-dict key.
template <class T, class B>
std::map<std::string, LowpSlot> lowp_slots(Module<T, B>& root) {
  std::map<std::string, LowpSlot> slots;
  for (auto& [name, module] : root.named_modules()) {
    const std::string prefix = name.empty() ? std::string() : name + ".";
    if (auto* attention = dynamic_cast<MultiheadAttention<T, B>*>(module)) {
      const int64_t d = attention->in_proj_weight().size(1);
      LowpSlot slot{3 * d, d, 3, {}, {}};
      slot.install = [attention](LowpBlocks b) { attention->set_lowp_in_proj({b.at(0), b.at(1), b.at(2)}); };
      slot.current = [attention]() -> LowpBlocks {
        if (!attention->lowp_in_proj(0)) return {};
        return {attention->lowp_in_proj(0), attention->lowp_in_proj(1), attention->lowp_in_proj(2)};
      };
      slots.emplace(prefix + "in_proj_weight", std::move(slot));
    } else if (auto* linear = dynamic_cast<Linear<T, B>*>(module)) {
      LowpSlot slot{linear->out_features(), linear->in_features(), 1, {}, {}};
      slot.install = [linear](LowpBlocks b) { linear->set_lowp_weight(b.at(0)); };
      slot.current = [linear]() -> LowpBlocks {
        if (!linear->lowp_weight()) return {};
        return {linear->lowp_weight()};
      };
      slots.emplace(prefix + "weight", std::move(slot));
    }
  }
  return slots;
}

/// Whether any convertible weight under `root` is frozen already (nn::freeze, or a bf16 / int8 load).
template <class T, class B>
bool has_frozen_weights(Module<T, B>& root) {
  const std::map<std::string, LowpSlot> slots = lowp_slots(root);
  return std::any_of(slots.begin(), slots.end(),
                     [](const auto& slot) { return !slot.second.current().empty(); });
}

/// Converts an fp32 weight (slot.rows × slot.cols, row-major) into the slot's blocks.
inline LowpBlocks convert_lowp_blocks(WeightPrecision precision, const float* w, const LowpSlot& slot) {
  const int64_t rows = slot.rows / slot.blocks;
  LowpBlocks out;
  for (int64_t b = 0; b < slot.blocks; ++b)
    out.push_back(
        std::make_shared<LowpWeight>(precision, w + b * rows * slot.cols, rows, slot.cols, slot.cols));
  return out;
}

/// The low precision a file stores `key` in: bf16 for BF16, int8 for I8, else fp32 (to convert).
inline WeightPrecision stored_precision(const io::SafetensorsFile& file, const std::string& key) {
  const io::DType dtype = file.info(key).dtype;
  if (dtype == io::DType::kBF16) return WeightPrecision::kBFloat16;
  if (dtype == io::DType::kI8) return WeightPrecision::kInt8;
  return WeightPrecision::kFloat32;
}

/// Reads a BF16 or I8 weight of `file` as the slot's blocks, from its bytes (no fp32 copy). Throws
/// StateDictError for a missing or misshapen "<key>_scale", ValueError naming the file and key for
/// values int8 cannot hold (-128, a negative or non-finite scale).
inline LowpBlocks read_lowp_blocks(const io::SafetensorsFile& file, const std::string& key,
                                   const LowpSlot& slot) {
  const int64_t rows = slot.rows / slot.blocks, cols = slot.cols;
  LowpBlocks out;
  if (stored_precision(file, key) == WeightPrecision::kBFloat16) {
    const Tensor<bfloat16, Cpu> w = file.read<bfloat16, Cpu>(key);
    for (int64_t b = 0; b < slot.blocks; ++b)
      out.push_back(
          std::make_shared<LowpWeight>(Bf16Weight::from_bf16(w.data() + b * rows * cols, rows, cols)));
    return out;
  }
  const std::string scale_key = key + kLowpScaleSuffix;
  BINDERY_CHECK(file.contains(scale_key), nn::StateDictError, file.path(), ": int8 weight '", key,
                "' has no scales: expected a float tensor '", scale_key, "' of shape (", slot.rows, ")");
  BINDERY_CHECK(file.info(scale_key).shape == Shape{slot.rows}, nn::StateDictError, file.path(), ": '",
                scale_key, "' has shape ", file.info(scale_key).shape, ", expected (", slot.rows, ")");
  const Tensor<int8_t, Cpu> q = file.read<int8_t, Cpu>(key);
  const Tensor<float, Cpu> scales = file.read<float, Cpu>(scale_key);
  try {
    for (int64_t b = 0; b < slot.blocks; ++b)
      out.push_back(std::make_shared<LowpWeight>(
          Int8Weight::from_quantized(q.data() + b * rows * cols, scales.data() + b * rows, rows, cols)));
  } catch (const ValueError& e) {
    throw ValueError(::bindery::detail::concat(file.path(), ": int8 weight '", key, "': ", e.what()));
  }
  return out;
}

/// Writes `root`'s state dict as safetensors with its converted weights in their own dtype (the
/// format above; fp32 layers, frozen or not, are F32), atomically, tensor by tensor (memory: one row of int8
/// at a time beyond the model). A model with nothing converted gives a plain fp32 file.
inline void save_lowp_safetensors(Module<float, Cpu>& root, const std::string& path,
                                  std::map<std::string, std::string> metadata = {{"format", "pt"}}) {
  const std::map<std::string, LowpSlot> slots = lowp_slots(root);
  const StateDict<float, Cpu> state = root.state_dict();
  std::vector<io::SafetensorsWriter::Entry> entries;
  std::map<std::string, LowpBlocks> converted;             // weight key -> its blocks
  std::map<std::string, std::string> scale_of;             // scale key -> weight key
  std::map<std::string, const Tensor<float, Cpu>*> dense;  // F32 tensors
  WeightPrecision precision = WeightPrecision::kFloat32;
  for (const auto& [key, tensor] : state) {
    const auto slot = slots.find(key);
    LowpBlocks blocks = slot != slots.end() ? slot->second.current() : LowpBlocks{};
    if (blocks.empty()) {
      entries.push_back({key, io::DType::kF32, tensor.shape()});
      dense.emplace(key, &tensor);
      continue;
    }
    const WeightPrecision p = blocks[0]->precision();
    const Shape shape{slot->second.rows, slot->second.cols};
    if (p == WeightPrecision::kFloat32) {  // frozen fp32: written unpacked, as a trainable layer's
      entries.push_back({key, io::DType::kF32, shape});
      converted.emplace(key, std::move(blocks));
      continue;
    }
    BINDERY_CHECK(precision == WeightPrecision::kFloat32 || precision == p, ValueError,
                  "save_lowp_safetensors(", path, "): the model mixes ", to_string(precision), " and ",
                  to_string(p), " weights ('", key, "'); one file holds one low precision");
    precision = p;
    entries.push_back({key, p == WeightPrecision::kBFloat16 ? io::DType::kBF16 : io::DType::kI8, shape});
    if (p == WeightPrecision::kInt8) {
      entries.push_back({key + kLowpScaleSuffix, io::DType::kF32, Shape{slot->second.rows}});
      scale_of.emplace(key + kLowpScaleSuffix, key);
    }
    converted.emplace(key, std::move(blocks));
  }
  if (precision != WeightPrecision::kFloat32) metadata[kLowpMetadataKey] = to_string(precision);
  io::SafetensorsWriter out(path, std::move(entries), metadata);
  for (const auto& entry : out.entries()) {
    if (const auto d = dense.find(entry.name); d != dense.end()) {
      out.write(*d->second);
    } else if (const auto s = scale_of.find(entry.name); s != scale_of.end()) {
      for (const auto& block : converted.at(s->second))
        out.write(block->int8().scales(), block->rows() * static_cast<int64_t>(sizeof(float)));
    } else {
      auto write_rows = [&out](const auto& w) {  // packed for the kernel: unpacked row by row
        using Value = std::decay_t<decltype(w.at(0, 0))>;
        std::vector<Value> row(static_cast<size_t>(w.cols()));
        for (int64_t j = 0; j < w.rows(); ++j) {
          for (int64_t p = 0; p < w.cols(); ++p) row[static_cast<size_t>(p)] = w.at(j, p);
          out.write(row.data(), w.cols() * static_cast<int64_t>(sizeof(Value)));
        }
      };
      for (const auto& block : converted.at(entry.name)) {
        if (block->precision() == WeightPrecision::kFloat32) {
          write_rows(block->f32());
        } else if (block->precision() == WeightPrecision::kBFloat16) {
          write_rows(block->bf16());
        } else {
          write_rows(block->int8());
        }
      }
    }
  }
  out.commit();
}

}  // namespace bindery::nn
