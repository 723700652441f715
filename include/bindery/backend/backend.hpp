// bindery/backend/backend.hpp — what a backend policy must provide.
//
// A backend is a type (bindery::Cpu, bindery::Cuda), never a macro, an enum or a virtual class.
// Tensor<T, B>, Var<T, B> and every module take it as a template parameter; ops call only the
// static functions below, so nothing above this layer assumes host memory.
#pragma once

#include <concepts>
#include <cstdint>

namespace bindery {

/// The Backend concept: memory, copies, synchronization and an indexed parallel loop.
///
/// - `allocate<T>(n)` / `deallocate(p)`: n elements of backend memory (never managed memory).
/// - `copy_to_host`, `copy_from_host`, `copy`: element copies host<-backend, backend<-host and
///   backend<-backend.
/// - `for_each(n, f)`: calls f(i) for i in [0, n) in parallel; f is a BINDERY_HOST_DEVICE functor.
/// - `synchronize()`: waits for queued work (a no-op on the CPU).
/// - `gemm` / `gemm_batched`: row-major C = alpha op(A) op(B) + beta C.
template <class B>
concept Backend = requires(float* p, const float* cp, int64_t n) {
  { B::kName } -> std::convertible_to<const char*>;
  { B::kHostAccessible } -> std::convertible_to<bool>;
  { B::template allocate<float>(n) } -> std::same_as<float*>;
  B::deallocate(p);
  B::copy_to_host(p, cp, n);
  B::copy_from_host(p, cp, n);
  B::copy(p, cp, n);
  B::synchronize();
  B::gemm(false, false, n, n, n, 1.0f, cp, n, cp, n, 0.0f, p, n);
};

}  // namespace bindery
