// examples/04_write_your_op — write your own op and prove its gradient right.
//
// softplus.hpp (next to this file) adds two ops the way bindery's own are written: softplus, a
// pointwise op made of two functors, and scale_shift_softplus, a fused op with a hand-written
// backward. This program checks them:
//   1. values against the textbook formula, in double, including both tails;
//   2. the fp64 gradient check (central differences against backward()) for both ops;
//   3. that the check can fail: a deliberately wrong derivative is caught;
//   4. the fused op against the same function composed of bindery's ops (values and gradients, float).
// Exits 1 if any check fails. Run: ./04_write_your_op [--quick] [--rows N] [--features D]
#include <bindery/bindery.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "softplus.hpp"

using namespace bindery;

namespace {

int failures = 0;

void report(const char* what, double error, double tolerance) {
  const bool ok = error <= tolerance;  // NaN fails
  if (!ok) ++failures;
  std::printf("  %-58s %9.2e  (<= %.0e)  %s\n", what, error, tolerance, ok ? "ok" : "FAILED");
}

/// max |a - b| / max(max |b|, 1): the error relative to the values' scale.
template <class T>
double max_error(const Tensor<T>& a, const Tensor<T>& b) {
  if (!(a.shape() == b.shape())) return INFINITY;
  const std::vector<T> x = a.to_vector(), y = b.to_vector();
  double diff = 0, scale = 1;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::fabs(static_cast<double>(x[i]) - static_cast<double>(y[i]));
    if (!(d <= diff)) diff = d;
    scale = std::max(scale, std::fabs(static_cast<double>(y[i])));
  }
  return diff / scale;
}

/// The wrong derivative a tired author might write: e^x / (1 + e^x)^2 is sigmoid's derivative.
struct WrongSoftplusGrad {
  template <class T>
  BINDERY_HOST_DEVICE T operator()(T dL_dy, T x) const {
    const T e = std::exp(x);
    return dL_dy * e / ((T(1) + e) * (T(1) + e));
  }
};

template <class T, class B>
Var<T, B> wrong_softplus(const Var<T, B>& x) {
  const Tensor<T, B> saved_x = x.value();
  return make_result<T, B>(ops::map(x.value(), my_ops::Softplus{}), "wrong_softplus", {x},
                           [saved_x](const Tensor<T, B>& dL_dy) {
                             return std::vector{ops::zip(dL_dy, saved_x, WrongSoftplusGrad{})};
                           });
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 6, features = 5;
  bool quick = false;
  CLI::App app{"Write your own op: a pointwise functor op and a fused op, gradient-checked"};
  app.add_option("--rows", rows, "rows of the test inputs")->check(CLI::Range(1, 64));
  app.add_option("--features", features, "features (the last axis) of the test inputs")
      ->check(CLI::Range(1, 64));
  app.add_flag("--quick", quick, "smaller inputs (2 x 3), for the CTest");
  CLI11_PARSE(app, argc, argv);
  if (quick) rows = 2, features = 3;
  Philox rng(4);

  std::printf("1. softplus values against log(1 + e^x), in double\n");
  {
    // Moderate x: the textbook formula is accurate there.
    const Tensor<double> x = Tensor<double>::uniform({rows, features}, rng, -8.0, 8.0);
    const Tensor<double> y = my_ops::softplus(Var<double>(x)).value();
    std::vector<double> textbook = x.to_vector();
    for (double& v : textbook) v = std::log(1.0 + std::exp(v));
    report("|softplus - log(1 + e^x)|, x in [-8, 8]",
           max_error(y, Tensor<double>::from_vector(textbook, x.shape())), 1e-15);
    // The tails, where the textbook formula fails: e^x overflows at x = 800, and 1 + e^-40 rounds to 1.
    const Tensor<double> tails = Tensor<double>::from_vector({-40.0, 800.0}, Shape{2});
    const std::vector<double> t = my_ops::softplus(Var<double>(tails)).value().to_vector();
    report("softplus(-40) relative to e^-40", std::fabs(t[0] - std::exp(-40.0)) / std::exp(-40.0), 1e-15);
    report("softplus(800) - 800", std::fabs(t[1] - 800.0), 0.0);
  }

  std::printf("2. gradient check in double (central differences vs backward())\n");
  {
    // TUTORIAL: gradcheck projects the output on a fixed random r, runs one backward for every
    // input's gradient, perturbs each input element by +-1e-6 and compares normwise. fp64 makes the
    // numeric side exact to ~1e-10, so a correct backward lands far below the 1e-6 tolerance.
    const Var<double> x(Tensor<double>::normal({rows, features}, rng, 0.0, 3.0), true);
    const GradcheckResult pointwise =
        gradcheck<Cpu>([](const std::vector<Var<double>>& in) { return my_ops::softplus(in[0]); }, {x});
    report("softplus: dL/dx", pointwise.max_error, 1e-6);

    const Var<double> scale(Tensor<double>::normal({features}, rng), true);
    const Var<double> shift(Tensor<double>::normal({features}, rng), true);
    const GradcheckResult fused = gradcheck<Cpu>(
        [](const std::vector<Var<double>>& in) { return my_ops::scale_shift_softplus(in[0], in[1], in[2]); },
        {x, scale, shift});
    report("scale_shift_softplus: dL/dx", fused.errors[0], 1e-6);
    report("scale_shift_softplus: dL/dscale (summed over rows)", fused.errors[1], 1e-6);
    report("scale_shift_softplus: dL/dshift (summed over rows)", fused.errors[2], 1e-6);
  }

  std::printf("3. the check can fail: a wrong derivative (sigmoid's, not softplus') is caught\n");
  {
    const Var<double> x(Tensor<double>::normal({rows, features}, rng, 0.0, 3.0), true);
    const GradcheckResult wrong =
        gradcheck<Cpu>([](const std::vector<Var<double>>& in) { return wrong_softplus(in[0]); }, {x});
    // Negated: this line passes when the gradient check reports a large error.
    const bool caught = !wrong.ok && wrong.max_error > 0.1;
    std::printf("  %-58s %9.2e  %s\n", "wrong derivative: relative error", wrong.max_error,
                caught ? "caught (ok)" : "NOT CAUGHT (FAILED)");
    if (!caught) ++failures;
  }

  std::printf("4. fused against composite, in float (values and gradients)\n");
  {
    // TUTORIAL: the composite twin is the same function written with existing ops; its backward
    // comes for free from theirs. It makes three passes forward (mul, add, softplus) and saves two
    // intermediates where the fused op makes one pass and saves none. Here both round the same steps
    // in the same order and agree bit for bit; a fused op that reorders its math (an FMA, a sum in
    // another order) agrees to float's precision, which is what the tolerance allows.
    const Tensor<float> x_value = Tensor<float>::normal({rows, features}, rng, 0.0, 2.0);
    const Tensor<float> scale_value = Tensor<float>::normal({features}, rng);
    const Tensor<float> shift_value = Tensor<float>::normal({features}, rng);
    const Tensor<float> seed = Tensor<float>::normal({rows, features}, rng);  // dL/dy
    struct Grads {
      Tensor<float> y, x, scale, shift;
    };
    auto run = [&](bool fused) {
      Var<float> x(x_value.clone(), true), scale(scale_value.clone(), true), shift(shift_value.clone(), true);
      Var<float> y =
          fused ? my_ops::scale_shift_softplus(x, scale, shift) : my_ops::softplus(x * scale + shift);
      y.backward(seed);
      return Grads{y.value(), x.grad(), scale.grad(), shift.grad()};
    };
    const Grads fused = run(true), composite = run(false);
    report("values", max_error(fused.y, composite.y), 1e-6);
    report("dL/dx", max_error(fused.x, composite.x), 1e-6);
    report("dL/dscale", max_error(fused.scale, composite.scale), 1e-6);
    report("dL/dshift", max_error(fused.shift, composite.shift), 1e-6);
  }

  std::printf("%s\n", failures == 0 ? "all checks passed" : "SOME CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
