// bindery/config.hpp — the single portability header.
//
// This is the ONLY file in bindery that tests __CUDACC__. Everything else uses the macros below, so
// a CPU-only translation unit never sees a CUDA keyword and a CUDA one compiles the same functors
// for host and device.
#pragma once

#define BINDERY_VERSION_MAJOR 0
#define BINDERY_VERSION_MINOR 1
#define BINDERY_VERSION_PATCH 0
#define BINDERY_VERSION_STRING "0.1.0"

#if defined(__CUDACC__)
#define BINDERY_HOST_DEVICE __host__ __device__
#define BINDERY_COMPILING_CUDA 1
#else
#define BINDERY_HOST_DEVICE
#define BINDERY_COMPILING_CUDA 0
#endif

/// BINDERY_CHECK(condition, ErrorType, message parts...): throws `::bindery::ErrorType` with the
/// message parts streamed together when the condition is false. Every argument after the error type
/// is only evaluated on failure, so checks cost one branch on the hot path.
#define BINDERY_CHECK(condition, ErrorType, ...)                          \
  do {                                                                    \
    if (!(condition)) [[unlikely]] {                                      \
      throw ::bindery::ErrorType(::bindery::detail::concat(__VA_ARGS__)); \
    }                                                                     \
  } while (false)
