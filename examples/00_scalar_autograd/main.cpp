// examples/00_scalar_autograd — reverse-mode autograd on scalars, micrograd-sized.
//
// Part 1 builds a small expression out of 0-d Var<double>, calls backward() and prints every value
// and gradient. Part 2 fits a tiny 2-layer network (1 -> 8 tanh units -> 1) to a few points with a
// hand-written SGD step. Run: ./00_scalar_autograd
#include <bindery/bindery.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

using bindery::Tensor;
namespace ops = bindery::ops;
using Scalar = bindery::Var<double>;  // a 0-d tensor with a place in the autograd graph

// TUTORIAL: a leaf is a Var nobody computed: an input or a parameter. requires_grad = true asks
// backward() to leave dL/d(leaf) in leaf.grad().
Scalar leaf(double value) {
  return Scalar(Tensor<double>::scalar(value), /*requires_grad=*/true);
}

void show(const char* name, const Scalar& v) {
  std::printf("  %-3s = %8.4f   made by %-5s  dL/d%s = %8.4f\n", name, v.item(), v.op_name(), name,
              v.has_grad() ? v.grad().item() : 0.0);
}

int main() {
  std::printf("Part 1: L = tanh(a*b + c) * f\n");
  Scalar a = leaf(2.0), b = leaf(-3.0), c = leaf(6.5), f = leaf(-2.0);
  // TUTORIAL: every op runs at once (define-by-run) AND records a node on the tape: its inputs and
  // a closure that turns dL/d(output) into dL/d(each input). Nothing is compiled ahead of time.
  Scalar e = a * b;         // -6       node "mul": de/da = b, de/db = a
  Scalar d = e + c;         // 0.5      node "add": passes the gradient through unchanged
  Scalar t = ops::tanh(d);  // 0.4621  node "tanh": dt/dd = 1 - t² (it saves t, not d)
  Scalar L = t * f;         // -0.9242
  // TUTORIAL: the gradients of intermediate values are transient (freed as soon as they are
  // passed on); retain_grad() keeps them so that we can print them.
  for (Scalar* v : {&e, &d, &t, &L}) v->retain_grad();
  // TUTORIAL: backward() sorts the tape topologically from L, seeds dL/dL = 1 and walks it in
  // reverse, each node adding its inputs' gradients (the chain rule, one multiplication per edge).
  L.backward();
  for (auto [name, v] :
       {std::pair{"a", a}, {"b", b}, {"c", c}, {"f", f}, {"e", e}, {"d", d}, {"t", t}, {"L", L}})
    show(name, v);
  // Check one by hand: dL/da = f * (1 - t²) * b.
  const double t_value = std::tanh(0.5);
  std::printf("  by hand: dL/da = f (1 - t^2) b = %8.4f\n\n", -2.0 * (1 - t_value * t_value) * -3.0);

  std::printf("Part 2: fit y = sin(3x) with 1 -> 8 tanh -> 1, plain SGD\n");
  const std::vector<double> xs = {-1.0, -0.6, -0.2, 0.2, 0.6, 1.0};
  const int hidden = 8;
  bindery::Philox rng(7);  // counter-based RNG: the same numbers on every machine and backend
  auto init = [&](double scale) { return leaf(scale * Tensor<double>::normal({}, rng).item()); };
  std::vector<Scalar> w1, b1, w2, params;
  for (int j = 0; j < hidden; ++j) w1.push_back(init(1.5)), b1.push_back(init(0.5)), w2.push_back(init(0.5));
  Scalar b2 = leaf(0.0);
  for (int j = 0; j < hidden; ++j) params.insert(params.end(), {w1[j], b1[j], w2[j]});
  params.push_back(b2);

  const double learning_rate = 0.1;
  for (int epoch = 0; epoch <= 1000; ++epoch) {
    // Forward: mean squared error over the points, one scalar op at a time.
    Scalar loss = leaf(0.0).detach();  // a constant 0 to accumulate into
    for (double x : xs) {
      Scalar y = b2;
      for (int j = 0; j < hidden; ++j) y = y + w2[j] * ops::tanh(w1[j] * x + b1[j]);
      Scalar error = y - std::sin(3 * x);
      loss = loss + error * error * (1.0 / xs.size());
    }
    if (epoch % 200 == 0) std::printf("  epoch %4d  loss %.6f\n", epoch, loss.item());
    // TUTORIAL: one backward fills every parameter's grad; the step moves each parameter against
    // its gradient, then zero_grad() clears it (gradients ACCUMULATE across backward calls).
    loss.backward();
    for (Scalar& p : params) {
      p.assign(Tensor<double>::scalar(p.item() - learning_rate * p.grad().item()));
      p.zero_grad();
    }
  }
  std::printf("  x      target   prediction\n");
  bindery::NoGrad no_grad;  // TUTORIAL: inference records no tape at all
  for (double x : xs) {
    Scalar y = b2;
    for (int j = 0; j < hidden; ++j) y = y + w2[j] * ops::tanh(w1[j] * x + b1[j]);
    std::printf("  %5.2f  %7.4f  %7.4f\n", x, std::sin(3 * x), y.item());
  }
  return 0;
}
