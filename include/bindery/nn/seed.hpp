// bindery/nn/seed.hpp — where a layer's init seed comes from when the caller gives none.
//
//   nn::Linear<float> a(4, 4), b(4, 4);           // different weights, the same in every run
//   nn::Linear<float> c(4, 4, {.seed = 7});        // explicit: exactly the weights of seed 7, always
//   {
//     nn::SeedScope scope(42);                     // the layers built in here draw from seed 42
//     Net net;                                     // ... so building it twice gives the same weights
//   }
//
// The rule, in one sentence: a layer built with a seed uses it; a layer built WITHOUT one takes the
// next seed of its thread's seed sequence, init::derive_seed(sequence seed, n) for n = 0, 1, 2 ...
// Each thread's sequence starts as if SeedScope(0) were open, and nn::SeedScope(seed) opens a fresh
// sequence until the scope closes (then the outer one continues where it was). A composite module
// (Mlp, Block, Transformer, MultiheadAttention, PatchEmbed) resolves its own seed once, this way,
// and derives each child's from it with init::derive_seed(seed, child index): a whole subtree costs
// one draw, and its weights depend only on its own seed.
//
// Why a sequence rather than re-seeding children when they are registered: a layer's weights exist
// as soon as it is constructed (and may be read, copied or loaded before it is registered), and
// re-initializing at register_module would make registration change numbers. Why per thread:
// no locks, and two threads building models never perturb each other's sequence. Deterministic
// across runs and backends: the seeds depend only on the order of construction, and Philox draws
// the same numbers on every backend.
#pragma once

#include <cstdint>
#include <optional>

namespace bindery::nn {

namespace init {

/// A well-mixed seed for the `stream`-th sub-generator of `seed` (SplitMix64 finalizer), so that the
/// children of a module (fc1, fc2, ...) draw from independent streams.
inline uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace init

}  // namespace bindery::nn

// In bindery::detail, not nn::detail: a namespace nn::detail would hide bindery::detail from the
// unqualified `detail::concat` calls of the nn headers.
namespace bindery::detail {

/// A thread's seed sequence: the seed of the innermost open nn::SeedScope (0 outside any) and how
/// many seeds it has handed out.
struct SeedSequence {
  uint64_t seed = 0;
  uint64_t next = 0;
};
inline SeedSequence& thread_seed_sequence() {
  thread_local SeedSequence sequence;
  return sequence;
}

}  // namespace bindery::detail

namespace bindery::nn {

/// The next seed of this thread's sequence (see the file comment): what a layer built without a
/// seed uses.
inline uint64_t next_seed() {
  ::bindery::detail::SeedSequence& s = ::bindery::detail::thread_seed_sequence();
  return init::derive_seed(s.seed, s.next++);
}

/// `seed` when given, else next_seed(): how every layer resolves its options' seed.
inline uint64_t resolve_seed(const std::optional<uint64_t>& seed) {
  return seed ? *seed : next_seed();
}

/// Opens a fresh seed sequence `seed` on this thread for its lifetime (see the file comment); the
/// enclosing sequence continues where it was when the scope closes. Not movable: scopes nest.
class SeedScope {
 public:
  explicit SeedScope(uint64_t seed) : saved_(::bindery::detail::thread_seed_sequence()) {
    ::bindery::detail::thread_seed_sequence() = {seed, 0};
  }
  SeedScope(const SeedScope&) = delete;
  SeedScope& operator=(const SeedScope&) = delete;
  ~SeedScope() { ::bindery::detail::thread_seed_sequence() = saved_; }

 private:
  ::bindery::detail::SeedSequence saved_;
};

/// Restarts this thread's current sequence at `seed` (torch.manual_seed's role for layer init).
inline void manual_seed(uint64_t seed) {
  ::bindery::detail::thread_seed_sequence() = {seed, 0};
}

}  // namespace bindery::nn
