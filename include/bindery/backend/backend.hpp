// bindery/backend/backend.hpp — what a backend policy must provide.
//
// A backend is a type (bindery::Cpu, bindery::Cuda), never a macro, an enum or a virtual class.
// Tensor<T, B>, Var<T, B> and every module take it as a template parameter constrained by `Backend`;
// ops call only the static functions below, so nothing above this layer assumes host memory.
// This header depends on nothing but the standard library, so core/tensor.hpp can constrain on it.
#pragma once

#include <concepts>
#include <cstdint>

namespace bindery {

namespace detail {

/// The functor type `for_each` is checked with (only named in unevaluated requirements).
struct ForEachProbe {
  void operator()(int64_t) const {}
};

/// A non-trivial element type: `allocate` must work for any T (optimizer slots are structs).
struct AllocateProbe {
  float value;
  int64_t step;
};

}  // namespace detail

/// Memory of a backend: where tensors live and how values move to and from the host.
///
/// - `kName`: printed in messages ("cpu", "cuda"); `kHostAccessible`: whether the host may
///   dereference the backend's pointers (ops read indices and scalars directly when it may).
/// - `allocate<T>(n)` / `deallocate(p)`: n elements of backend memory (never managed memory).
/// - `copy_to_host`, `copy_from_host`, `copy`: element copies host<-backend, backend<-host and
///   backend<-backend.
/// - `synchronize()`: waits for queued work (a no-op on the CPU).
template <class B>
concept BackendMemory = requires(float* p, const float* cp, int64_t n, detail::AllocateProbe* s) {
  { B::kName } -> std::convertible_to<const char*>;
  { B::kHostAccessible } -> std::convertible_to<bool>;
  { B::template allocate<float>(n) } -> std::same_as<float*>;
  { B::template allocate<detail::AllocateProbe>(n) } -> std::same_as<detail::AllocateProbe*>;
  B::deallocate(p);
  B::deallocate(s);
  B::copy_to_host(p, cp, n);
  B::copy_from_host(p, cp, n);
  B::copy(p, cp, n);
  B::synchronize();
};

/// Compute of a backend: the two primitives every op is written on.
///
/// - `for_each(n, f)` and `for_each(n, f, grain)`: calls f(i) for i in [0, n), in any order and in
///   parallel; f is a BINDERY_HOST_DEVICE functor. `grain` (items per task below which a CPU
///   backend stays on one thread) is a hint a backend may ignore; `kDefaultGrain` is its default
///   and the unit ops scale it from.
/// - `gemm` / `gemm_batched`: row-major C = alpha op(A) op(B) + beta C, one matrix or `batch`
///   matrices at strides (a stride of 0 broadcasts an operand), for T = float and double (and
///   bfloat16 / float16 where 16-bit tensors are used).
template <class B>
concept BackendCompute = requires(float* p, const float* cp, int64_t n, const detail::ForEachProbe& f) {
  { B::kDefaultGrain } -> std::convertible_to<int64_t>;
  B::for_each(n, f);
  B::for_each(n, f, n);
  B::gemm(false, false, n, n, n, 1.0f, cp, n, cp, n, 0.0f, p, n);
  B::gemm_batched(false, false, n, n, n, 1.0f, cp, n, n, cp, n, n, 0.0f, p, n, n, n);
};

/// A backend: BackendMemory + BackendCompute. Every Tensor<T, B>, Var<T, B> and nn::Module<T, B>
/// requires it, so a type that lacks one of the functions fails here, at its first use, naming the
/// missing requirement — not deep inside an op.
///
/// Everything else a backend may offer is optional and detected where it is used:
/// - op kernel specializations (`SoftmaxKernel<B>`, `LayerNormKernel<B>`, ...): the ops fall back
///   to portable kernels written on `for_each` (docs/architecture.md, "How to add a backend");
/// - `gemm_batched_rounded<Low>` (autocast's 16-bit-operand GEMM, `ops::detail::HasRoundedGemm`);
/// - `kShapeOnly = true`: a backend that tracks shapes but computes nothing (the tests' `Meta`),
///   on which ModalityEncoder refuses to run.
template <class B>
concept Backend = BackendMemory<B> && BackendCompute<B>;

}  // namespace bindery
