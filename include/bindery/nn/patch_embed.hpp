// bindery/nn/patch_embed.hpp — the convolutional stems: images, spectrograms, videos -> tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bindery/nn/conv.hpp"
#include "bindery/nn/layer_norm.hpp"
#include "bindery/nn/sequential.hpp"

namespace bindery::nn {

/// ImageBind's PadIm2Video(ntimes, "repeat"): an image (B, C, H, W) becomes a video
/// (B, C, ntimes, H, W) by repeating it; a one-frame video (B, C, 1, H, W) is repeated likewise;
/// other videos (B, C, T, H, W) pass unchanged. No parameters.
template <class T, class B = Cpu>
class PadIm2Video : public Module<T, B> {
 public:
  explicit PadIm2Video(int64_t ntimes) : ntimes_(ntimes) {
    BINDERY_CHECK(ntimes > 0, ValueError, "PadIm2Video: ntimes ", ntimes, " must be positive");
  }
  Var<T, B> forward(const Var<T, B>& x) {
    BINDERY_CHECK(x.rank() == 4 || x.rank() == 5, ShapeError, "PadIm2Video: input of shape ", x.shape(),
                  " must be (B, C, H, W) or (B, C, T, H, W)");
    const Var<T, B> video = x.rank() == 4 ? ops::unsqueeze(x, 2) : x;  // (B, C, T, H, W)
    if (video.size(2) != 1 || ntimes_ == 1) return video;
    Shape repeated = video.shape();
    repeated[2] = ntimes_;
    return ops::contiguous(ops::expand(video, repeated));
  }
  int64_t ntimes() const { return ntimes_; }

 private:
  int64_t ntimes_;
};

/// Options of PatchEmbed.
struct PatchEmbedConfig {
  int64_t in_channels = 3;      // C
  int64_t embed_dim = 768;      // D
  std::vector<int64_t> kernel;  // 2 entries (Conv2d) or 3 (Conv3d)
  std::vector<int64_t> stride;  // same count; empty = kernel (non-overlapping patches)
  bool bias = false;            // conv bias (ImageBind's stems have none)
  bool norm = false;            // LayerNorm `norm_layer` on the tokens (audio, depth, thermal)
  double norm_eps = 1e-5;       // its eps
  int64_t pad_time = 0;         // Conv3d only: > 0 puts PadIm2Video(pad_time) before the conv (vision)
  std::optional<uint64_t> seed = std::nullopt;  // conv init; unset: nn/seed.hpp
};

/// ImageBind's PatchEmbedGeneric: conv stem -> flatten the grid -> tokens (B, N, D) -> optional
/// LayerNorm. Keys: `proj.weight` [`proj.bias`] for a bare conv, `proj.1.weight` when PadIm2Video is
/// `proj.0` (vision), `norm_layer.{weight,bias}` with norm. N is the product of the conv's output
/// grid extents, flattened in row-major order (t, h, w).
template <class T, class B = Cpu>
class PatchEmbed : public Module<T, B> {
 public:
  explicit PatchEmbed(const PatchEmbedConfig& config) : embed_dim_(config.embed_dim) {
    const size_t n = config.kernel.size();
    const uint64_t seed = resolve_seed(config.seed);
    const std::vector<int64_t>& stride = config.stride.empty() ? config.kernel : config.stride;
    BINDERY_CHECK((n == 2 || n == 3) && stride.size() == n && (config.pad_time == 0 || n == 3), ValueError,
                  "PatchEmbed: kernel needs 2 or 3 extents and stride as many (got ", n, " and ",
                  stride.size(), "); pad_time only applies to 3-D stems");
    if (n == 2) {
      conv2d_ = std::make_shared<Conv2d<T, B>>(
          config.in_channels, config.embed_dim, std::array<int64_t, 2>{config.kernel[0], config.kernel[1]},
          std::array<int64_t, 2>{stride[0], stride[1]}, std::array<int64_t, 2>{0, 0}, config.bias, seed);
      this->register_module("proj", conv2d_);
    } else {
      conv3d_ = std::make_shared<Conv3d<T, B>>(
          config.in_channels, config.embed_dim,
          std::array<int64_t, 3>{config.kernel[0], config.kernel[1], config.kernel[2]},
          std::array<int64_t, 3>{stride[0], stride[1], stride[2]}, std::array<int64_t, 3>{0, 0, 0},
          config.bias, seed);
      if (config.pad_time > 0) {
        pad_ = std::make_shared<PadIm2Video<T, B>>(config.pad_time);
        this->register_module("proj",
                              std::make_shared<Sequential<PadIm2Video<T, B>, Conv3d<T, B>>>(pad_, conv3d_));
      } else {
        this->register_module("proj", conv3d_);
      }
    }
    if (config.norm) {
      norm_ = this->register_module("norm_layer",
                                    std::make_shared<LayerNorm<T, B>>(config.embed_dim, config.norm_eps));
    }
  }

  /// 2-D: x (B, C, H, W) -> (B, h*w, D). 3-D: x (B, C, T, H, W) (or (B, C, H, W) with pad_time)
  /// -> (B, t*h*w, D).
  Var<T, B> forward(const Var<T, B>& x) {
    Var<T, B> grid;  // (B, D, grid...)
    if (conv2d_) {
      grid = conv2d_->forward(x);
    } else {
      grid = conv3d_->forward(pad_ ? pad_->forward(x) : x);
    }
    Var<T, B> tokens = ops::transpose(ops::flatten(grid, 2), 1, 2);  // (B, N, D)
    return norm_ ? norm_->forward(tokens) : tokens;
  }

  /// Exactly one of these is non-null.
  Conv2d<T, B>* conv2d() { return conv2d_.get(); }
  Conv3d<T, B>* conv3d() { return conv3d_.get(); }
  /// Null without norm.
  LayerNorm<T, B>* norm_layer() { return norm_.get(); }
  int64_t embed_dim() const { return embed_dim_; }

 private:
  int64_t embed_dim_;
  std::shared_ptr<Conv2d<T, B>> conv2d_;
  std::shared_ptr<Conv3d<T, B>> conv3d_;
  std::shared_ptr<PadIm2Video<T, B>> pad_;
  std::shared_ptr<LayerNorm<T, B>> norm_;
};

}  // namespace bindery::nn
