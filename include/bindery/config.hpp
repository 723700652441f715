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

/// Host SIMD code this translation unit's compiler can build, decided here once (0 or 1):
///   BINDERY_HOST_SIMD_X86      x86-64 with a GNU-compatible compiler (g++ or clang), not nvcc:
///                              <immintrin.h>, per-function `target` attributes and
///                              __builtin_cpu_supports (the AVX-512 x·Wᵀ GEMM of
///                              backend/cpu_gemm_nt.hpp, the AVX2 resampler of data/resample.hpp).
///   BINDERY_HOST_SIMD_X86_GCC  the above with g++ itself (not clang): `#pragma GCC target` around
///                              GCC vector-extension code (the 16-lane erf/GELU of ops/simd_math.hpp).
/// nvcc's front end (the host side of a .cu file) gets neither and compiles the portable code.
///
/// One program may mix both kinds of translation unit (.cpp by g++, .cu by nvcc: the documented use
/// of bindery::cuda). Inline functions that differ between the two would then be ONE symbol with two
/// bodies, and the linker keeps either (an empty GEMM behind a "supported" check that says yes). So
/// each header puts its variant-specific functions in an inline namespace named after the variant
/// (`simd_x86` / `simd_portable`): the two kinds of translation unit define different symbols.
/// Callers outside those namespaces are the same tokens in both (their copies differ only in which
/// variant they call, and each copy is complete), and run-time switches shared by both variants
/// (Cpu::set_gemm_nt_kernel, ops::simd::set_wide) live outside them, so one switch serves the whole
/// program. tests/cuda/mixed_tu_main.cpp + mixed_tu_nvcc.cu link one translation unit of each kind.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__CUDACC__)
#define BINDERY_HOST_SIMD_X86 1
#else
#define BINDERY_HOST_SIMD_X86 0
#endif
#if BINDERY_HOST_SIMD_X86 && !defined(__clang__)
#define BINDERY_HOST_SIMD_X86_GCC 1
#else
#define BINDERY_HOST_SIMD_X86_GCC 0
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
