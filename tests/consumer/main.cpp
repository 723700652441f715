// Built against the installed package: trains y = 2x + 1 with autograd and checks the fit.
#include <bindery/bindery.hpp>

#include <cmath>
#include <cstdio>

int main() {
  using namespace bindery;
  Var<float> w(Tensor<float>::zeros({1}), true), b(Tensor<float>::zeros({1}), true);
  const Var<float> x(Tensor<float>::arange(-2.0, 2.0, 0.5));
  const Var<float> target(Tensor<float>::arange(-3.0, 5.0, 1.0));  // 2x + 1
  for (int step = 0; step < 300; ++step) {
    w.zero_grad();
    b.zero_grad();
    Var<float> err = w * x + b - target;
    ops::mean(err * err).backward();
    w.assign(ops::sub_forward(w.value(), ops::scale_forward(w.grad(), 0.1f)));
    b.assign(ops::sub_forward(b.value(), ops::scale_forward(b.grad(), 0.1f)));
  }
  std::printf("w = %.4f, b = %.4f\n", w.value().item(), b.value().item());
  return std::fabs(w.value().item() - 2.0f) < 1e-3f && std::fabs(b.value().item() - 1.0f) < 1e-3f ? 0 : 1;
}
