// bindery/autograd/gradcheck.hpp — compare backward() with central differences, in double.
//
// For f: inputs -> y (any shape) we check the scalar L = <r, y> for a fixed random r, so one
// backward gives dL/dx for every input, and the numeric side perturbs each input element by ±eps.
// The error is normwise per input, ‖g − ĝ‖ / (‖g‖ + ‖ĝ‖) (mlpack's CheckGradient); in double with
// eps = 1e-6 a correct gradient lands well under 1e-6, a wrong one near 1.
#pragma once

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bindery/autograd/engine.hpp"

namespace bindery {

struct GradcheckOptions {
  double eps = 1e-6;        // central-difference step
  double tolerance = 1e-6;  // pass when every input's relative error is below this
  uint64_t seed = 1234;     // for the projection vector r
};

struct GradcheckResult {
  bool ok = true;
  double max_error = 0.0;      // largest relative error over inputs
  std::vector<double> errors;  // one per input (0 for inputs without requires_grad)
  std::string report;          // human-readable, one line per input
};

/// Checks the gradients of `f` with respect to every input that requires grad. `f` must be
/// deterministic (seed any dropout inside it). The inputs' values are restored afterwards.
template <class B, class F>
GradcheckResult gradcheck(F&& f, const std::vector<Var<double, B>>& inputs, GradcheckOptions options = {}) {
  using TensorType = Tensor<double, B>;
  GradcheckResult result;

  const Var<double, B> probe = f(inputs);
  Philox rng(options.seed);
  const TensorType r = TensorType::uniform(probe.shape(), rng, -1.0, 1.0);
  const std::vector<double> r_host = r.to_vector();
  auto project = [&](const Var<double, B>& y) {
    const std::vector<double> v = y.value().to_vector();
    double acc = 0.0;
    for (size_t i = 0; i < v.size(); ++i) acc += v[i] * r_host[i];
    return acc;
  };

  for (auto input : inputs) input.zero_grad();
  Var<double, B> y = f(inputs);
  BINDERY_CHECK(y.requires_grad(), AutogradError, "gradcheck: the function's output does not require grad");
  y.backward(r);

  std::ostringstream report;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Var<double, B> input = inputs[k];
    if (!input.requires_grad()) {
      result.errors.push_back(0.0);
      continue;
    }
    const std::vector<double> analytic = input.has_grad()
                                             ? input.grad().to_vector()
                                             : std::vector<double>(static_cast<size_t>(input.numel()), 0.0);
    std::vector<double> values = input.value().to_vector();
    std::vector<double> numeric(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const double original = values[i];
      values[i] = original + options.eps;
      input.assign(TensorType::from_vector(values, input.shape()));
      const double plus = project(f(inputs));
      values[i] = original - options.eps;
      input.assign(TensorType::from_vector(values, input.shape()));
      const double minus = project(f(inputs));
      values[i] = original;
      numeric[i] = (plus - minus) / (2.0 * options.eps);
    }
    input.assign(TensorType::from_vector(values, input.shape()));
    double diff = 0.0, norm_a = 0.0, norm_n = 0.0;
    for (size_t i = 0; i < values.size(); ++i) {
      diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
      norm_a += analytic[i] * analytic[i];
      norm_n += numeric[i] * numeric[i];
    }
    const double denominator = std::sqrt(norm_a) + std::sqrt(norm_n);
    const double error = denominator > 1e-300 ? std::sqrt(diff) / denominator : 0.0;
    result.errors.push_back(error);
    result.max_error = std::max(result.max_error, error);
    if (!(error <= options.tolerance)) result.ok = false;  // NaN fails too
    report << "input " << k << " " << input.shape() << ": relative error " << error << " (|analytic| "
           << std::sqrt(norm_a) << ", |numeric| " << std::sqrt(norm_n) << ")\n";
  }
  result.report = report.str();
  return result;
}

}  // namespace bindery
