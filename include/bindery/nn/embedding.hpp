// bindery/nn/embedding.hpp — Embedding: a table of learned vectors indexed by integer ids.
#pragma once

#include <cstdint>
#include <optional>

#include "bindery/nn/module.hpp"
#include "bindery/nn/seed.hpp"
#include "bindery/ops/embedding.hpp"

namespace bindery::nn {

/// Options of Embedding: `nn::Embedding<float>(vocab, dim, {.seed = 3})`.
struct EmbeddingOptions {
  /// Init seed; unset: the next seed of this thread's sequence (nn/seed.hpp).
  std::optional<uint64_t> seed = std::nullopt;
};

/// torch.nn.Embedding(num_embeddings, dim). Parameter `weight` (num_embeddings, dim), init N(0, 1)
/// from Philox(seed), as torch.
template <class T, class B = Cpu>
class Embedding : public Module<T, B> {
 public:
  explicit Embedding(int64_t num_embeddings, int64_t dim, EmbeddingOptions options = {}) {
    BINDERY_CHECK(num_embeddings > 0 && dim > 0, ValueError, "Embedding: num_embeddings ", num_embeddings,
                  " and dim ", dim, " must be positive");
    Philox rng(resolve_seed(options.seed));
    weight_ = this->register_parameter("weight", Tensor<T, B>::normal(Shape{num_embeddings, dim}, rng));
  }

  /// The old positional form: Embedding(n, dim, seed) is Embedding(n, dim, {.seed = seed}).
  Embedding(int64_t num_embeddings, int64_t dim, uint64_t seed)
      : Embedding(num_embeddings, dim, EmbeddingOptions{.seed = seed}) {}

  /// ids: any shape, values in [0, num_embeddings) -> (ids..., dim). Out-of-range ids throw IndexError.
  Var<T, B> forward(const Tensor<int64_t, B>& ids) { return ops::embedding(ids, weight_); }

  Var<T, B> weight() const { return weight_; }
  int64_t num_embeddings() const { return weight_.size(0); }
  int64_t dim() const { return weight_.size(1); }

 private:
  Var<T, B> weight_;
};

}  // namespace bindery::nn
