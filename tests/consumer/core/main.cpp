// A program on bindery::core alone: one Linear, a backward pass, gradients checked by hand. Built
// against the INSTALLED package by tests/consumer/run_consumer.cmake. Exit code 0 when right.
#include <bindery/autograd/engine.hpp>
#include <bindery/nn/linear.hpp>
#include <bindery/ops/reduce.hpp>

// The core headers must not reach the libraries of other components (io: nlohmann_json; data:
// zlib, utf8proc, stb): their headers would compile here (system include paths) but the core
// target does not link them.
#if defined(NLOHMANN_JSON_VERSION_MAJOR) || defined(ZLIB_VERSION) || defined(UTF8PROC_VERSION_MAJOR) || \
    defined(STBI_VERSION)
#error "a bindery core header included a header of the io or data component's libraries"
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  using namespace bindery;
  Philox rng(5);
  const Var<float> x(Tensor<float>::normal({4, 130}, rng));  // K >= 128: Cpu's own x·Wᵀ kernel
  nn::Linear<float> layer(130, 3);
  Var<float> loss = ops::sum(layer.forward(x));
  loss.backward();
  // d(sum y)/dW[j][p] = Σ_i x[i][p] for every output j; d/db[j] = rows.
  const std::vector<float> xs = x.value().to_vector(), dw = layer.weight().grad().to_vector();
  const std::vector<float> db = layer.bias().grad().to_vector();
  double worst = 0.0;
  for (int64_t j = 0; j < 3; ++j) {
    for (int64_t p = 0; p < 130; ++p) {
      double expected = 0.0;
      for (int64_t i = 0; i < 4; ++i) expected += xs[static_cast<size_t>(i * 130 + p)];
      worst = std::max(worst, std::abs(dw[static_cast<size_t>(j * 130 + p)] - expected));
    }
    worst = std::max(worst, std::abs(db[static_cast<size_t>(j)] - 4.0));
  }
  std::printf("core consumer: loss %.4f, max gradient error %.3g\n", loss.item(), worst);
  return worst < 1e-5 ? 0 : 1;
}
