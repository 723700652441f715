// tests/test_util.hpp — shared helpers for every bindery test (also the precompiled header).
#pragma once

#include <catch2/catch.hpp>

#include <bindery/bindery.hpp>
#if BINDERY_COMPILING_CUDA
#include <bindery/cuda.hpp>  // nvcc: the CUDA test binaries (tests/cuda) add bindery::Cuda below
#endif

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

namespace bindery::testing {

/// Backends every templated test body runs on. The CUDA test build (tests/cuda, compiled by nvcc)
/// adds bindery::Cuda; there, a machine without a GPU reports the CUDA cases as SKIPPED (see
/// DESIGN §8), never as passed.
#if BINDERY_COMPILING_CUDA
using Backends = std::tuple<Cpu, Cuda>;
#else
using Backends = std::tuple<Cpu>;
#endif

/// Max |a - b| over two equally long sequences (infinity on size mismatch).
template <class T>
double max_abs_diff(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (!(d <= worst)) worst = d;  // NaN wins
  }
  return worst;
}

/// REQUIRE that tensor `t` has `shape` and values within `tolerance` of `expected`.
template <class T, class B>
void require_values(const Tensor<T, B>& t, const Shape& shape, const std::vector<double>& expected,
                    double tolerance = 1e-6) {
  INFO("shape " << t.shape() << ", expected " << shape);
  REQUIRE(t.shape() == shape);
  std::vector<double> actual;
  for (T v : t.to_vector()) actual.push_back(static_cast<double>(v));
  INFO("values " << t);
  REQUIRE(max_abs_diff(actual, expected) <= tolerance);
}

/// REQUIRE that a gradient check passes at the project's tolerance (fp64, relative error <= 1e-6).
template <class B, class F>
void require_gradcheck(F&& f, const std::vector<Var<double, B>>& inputs, GradcheckOptions options = {}) {
  const GradcheckResult result = gradcheck<B>(std::forward<F>(f), inputs, options);
  INFO(result.report);
  REQUIRE(result.ok);
}

/// A leaf of `shape` with values uniform in [low, high) from a fixed seed.
template <class T = double, class B = Cpu>
Var<T, B> random_var(const Shape& shape, uint64_t seed, double low = -1.0, double high = 1.0,
                     bool requires_grad = true) {
  Philox rng(seed);
  return Var<T, B>(Tensor<T, B>::uniform(shape, rng, low, high), requires_grad);
}

/// REQUIRE that `expression` throws ErrorType whose message contains every `needle`
/// (e.g. the shapes involved, formatted as "(2, 3)").
#define BINDERY_REQUIRE_THROWS_WITH_ALL(expression, ErrorType, ...) \
  do {                                                              \
    bool bindery_thrown = false;                                    \
    try {                                                           \
      (void)(expression);                                           \
    } catch (const ErrorType& error) {                              \
      bindery_thrown = true;                                        \
      const std::string message = error.what();                     \
      for (const std::string needle : {__VA_ARGS__}) {              \
        INFO("message: " << message << "\nmissing: " << needle);    \
        CHECK(message.find(needle) != std::string::npos);           \
      }                                                             \
    }                                                               \
    INFO("expected " #ErrorType " from " #expression);              \
    REQUIRE(bindery_thrown);                                        \
  } while (false)

/// A fresh folder under the system's temporary folder (`<prefix>-XXXXXX`), removed with everything in
/// it at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "bindery-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path.string(); }
  /// The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace bindery::testing
