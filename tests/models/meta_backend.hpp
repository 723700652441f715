// tests/models/meta_backend.hpp — a shape-only backend (PyTorch's "meta" device) for tests.
//
// Every allocation returns the same one-element buffer and every kernel entry point does nothing, so a
// model of any size is built in milliseconds with no memory: its key list, shapes and parameter counts
// are real, its values are not. ModalityEncoder refuses to run on it (kShapeOnly).
#pragma once

#include <cstdint>

#include "bindery/backend/backend.hpp"

namespace bindery::testing {

struct Meta {
  static constexpr const char* kName = "meta";
  static constexpr bool kHostAccessible = false;
  static constexpr bool kShapeOnly = true;
  static constexpr int64_t kDefaultGrain = 16384;

  template <class T>
  static T* allocate(int64_t) {
    alignas(64) static T dummy[1] = {};
    return dummy;
  }
  template <class T>
  static void deallocate(T*) noexcept {}
  template <class T>
  static void copy_to_host(T*, const T*, int64_t) {}
  template <class T>
  static void copy_from_host(T*, const T*, int64_t) {}
  template <class T>
  static void copy(T*, const T*, int64_t) {}
  static void synchronize() {}
  template <class F>
  static void for_each(int64_t, const F&, int64_t = kDefaultGrain) {}
  template <class T>
  static void gemm(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,
                   int64_t) {}
  template <class T>
  static void gemm_batched(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t, const T*,
                           int64_t, int64_t, T, T*, int64_t, int64_t, int64_t) {}
};

// Meta satisfies the full Backend concept (it has every function, each doing nothing), so models
// are built on it exactly as on Cpu; kShapeOnly is the optional marker that stops them computing.
static_assert(Backend<Meta>);

}  // namespace bindery::testing
