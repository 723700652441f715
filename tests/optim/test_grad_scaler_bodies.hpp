// tests/optim/test_grad_scaler_bodies.hpp — the templated test bodies of test_grad_scaler.cpp, one instance
// per backend of bindery::testing::Backends: Cpu in test_optim (test_grad_scaler.cpp includes this file), Cpu
// and Cuda in test_cuda (tests/cuda/test_layers_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <cmath>
#include <limits>
#include <vector>

namespace bindery_tests::optim_grad_scaler {

using namespace bindery;

/// A small two-towers model: each tower Linear -> GELU -> Linear, trained with symmetric InfoNCE so
/// that paired rows of two random "modalities" align.
template <class B>
struct TwoTowers {
  nn::Linear<float, B> a1, a2, b1, b2;
  TwoTowers() : a1(24, 48, true, 1), a2(48, 16, true, 2), b1(20, 48, true, 3), b2(48, 16, true, 4) {}
  std::vector<Var<float, B>> parameters() {
    std::vector<Var<float, B>> all;
    for (nn::Linear<float, B>* layer : {&a1, &a2, &b1, &b2}) {
      for (auto& p : layer->parameters()) all.push_back(p);
    }
    return all;
  }
  Var<float, B> loss(const Var<float, B>& xa, const Var<float, B>& xb) {
    const Var<float, B> ea = a2.forward(ops::gelu(a1.forward(xa)));
    const Var<float, B> eb = b2.forward(ops::gelu(b1.forward(xb)));
    const Var<float, B> scale(Tensor<float, B>::full(Shape{}, 10.0f));
    return loss::info_nce(ea, eb, scale);
  }
};

/// Trains 40 AdamW steps at `precision` (fp16 with a GradScaler) and returns the losses.
template <class B>
std::vector<double> train(Precision precision) {
  Philox rng(2024);
  TwoTowers<B> model;
  const Var<float, B> xa(Tensor<float, B>::normal(Shape{32, 24}, rng));
  const Var<float, B> xb(Tensor<float, B>::normal(Shape{32, 20}, rng));
  optim::AdamW<float, B> optimizer(model.parameters(), optim::AdamWOptions{.lr = 1e-2, .weight_decay = 0.0});
  optim::GradScaler<float, B> scaler(optim::GradScalerOptions{.enabled = precision == Precision::kFloat16});
  std::vector<double> losses;
  for (int step = 0; step < 40; ++step) {
    optimizer.zero_grad();
    Var<float, B> loss;
    {
      Autocast autocast(precision);
      loss = model.loss(xa, xb);
    }
    losses.push_back(loss.item());
    scaler.scale(loss).backward();
    scaler.step(optimizer);
    scaler.update();
  }
  return losses;
}

TEMPLATE_LIST_TEST_CASE("mixed precision: bf16 and fp16 (+ loss scaling) training follows fp32",
                        "[optim][amp]", bindery::testing::Backends) {
  using B = TestType;
  const std::vector<double> fp32 = train<B>(Precision::kFloat32);
  const std::vector<double> bf16 = train<B>(Precision::kBFloat16);
  const std::vector<double> fp16 = train<B>(Precision::kFloat16);
  INFO("fp32 " << fp32.front() << " -> " << fp32.back() << ", bf16 " << bf16.front() << " -> " << bf16.back()
               << ", fp16 " << fp16.front() << " -> " << fp16.back());
  // Every run learns: the loss falls to under a quarter of its start.
  for (const auto* run : {&fp32, &bf16, &fp16}) REQUIRE(run->back() < 0.25 * run->front());
  // The first loss differs only by the rounding of the first GEMMs' operands.
  REQUIRE(std::fabs(bf16.front() - fp32.front()) < 2e-2 * fp32.front());
  REQUIRE(std::fabs(fp16.front() - fp32.front()) < 3e-3 * fp32.front());
  // And the runs stay close all the way (bf16 keeps 8 significant bits, fp16 11).
  REQUIRE(std::fabs(bf16.back() - fp32.back()) < 0.1 + 0.2 * fp32.back());
  REQUIRE(std::fabs(fp16.back() - fp32.back()) < 0.05 + 0.1 * fp32.back());
  // The rounding is real: the runs are not identical.
  REQUIRE(bf16 != fp32);
}

TEMPLATE_LIST_TEST_CASE("GradScaler: fp16 gradients that underflow without scaling survive with it",
                        "[optim][amp]", bindery::testing::Backends) {
  using B = TestType;
  const auto x = bindery::testing::random_var<float, B>({8, 64}, 1, -1, 1, false);
  auto w = bindery::testing::random_var<float, B>({4, 64}, 2);
  // loss = 1e-9 Σ linear(x, W): dL/dy = 1e-9 everywhere, below half's smallest subnormal (6e-8).
  auto gradient = [&](bool use_scaler) {
    w.zero_grad();
    optim::Sgd<float, B> sgd({w}, optim::SgdOptions{.lr = 0.0});
    optim::GradScaler<float, B> scaler(optim::GradScalerOptions{.enabled = use_scaler});
    Var<float, B> loss;
    {
      Autocast autocast(Precision::kFloat16);
      loss = ops::mul_scalar(ops::sum(ops::linear(x, w)), 1e-9f);
    }
    scaler.scale(loss).backward();
    scaler.unscale(sgd);
    return w.grad().to_vector();
  };
  const std::vector<float> unscaled = gradient(false), scaled = gradient(true);
  // The true gradient: dL/dW[o, i] = 1e-9 Σ_rows x[r, i].
  const std::vector<float> xs = x.value().to_vector();
  double worst = 0.0;
  size_t zeros = 0;
  for (size_t o = 0; o < 4; ++o) {
    for (size_t i = 0; i < 64; ++i) {
      double want = 0.0;
      for (size_t r = 0; r < 8; ++r) want += 1e-9 * static_cast<float>(float16(xs[r * 64 + i]));
      worst = std::max(worst, std::fabs(scaled[o * 64 + i] - want) / (std::fabs(want) + 1e-12));
      zeros += unscaled[o * 64 + i] == 0.0f ? 1 : 0;
    }
  }
  REQUIRE(zeros == 256);  // without scaling every gradient underflowed to 0
  REQUIRE(worst < 2e-3);  // with scaling they are right to half's precision
}

TEMPLATE_LIST_TEST_CASE("GradScaler: unscale, skipped steps, backoff and growth as torch.amp.GradScaler",
                        "[optim][amp]", bindery::testing::Backends) {
  using B = TestType;
  Var<float, B> p(Tensor<float, B>::from_vector({1.0f, 2.0f, 3.0f}, Shape{3}), true);
  Var<float, B> q(Tensor<float, B>::zeros(Shape{5000}), true);  // several overflow chunks
  optim::Sgd<float, B> sgd({p, q}, optim::SgdOptions{.lr = 0.5});
  optim::GradScaler<float, B> scaler(optim::GradScalerOptions{.init_scale = 1024.0, .growth_interval = 3});
  REQUIRE(scaler.get_scale() == 1024.0);

  auto set_grads = [&](float value, int64_t bad_index) {
    p.set_grad(Tensor<float, B>::full(Shape{3}, value * 1024.0f));
    std::vector<float> gq(5000, 0.0f);
    if (bad_index >= 0) gq[static_cast<size_t>(bad_index)] = std::numeric_limits<float>::infinity();
    q.set_grad(Tensor<float, B>::from_vector(gq, Shape{5000}));
  };
  // A clean step: grads are divided by the scale, the optimizer steps.
  set_grads(0.25f, -1);
  scaler.unscale(sgd);
  REQUIRE(p.grad().to_vector() == std::vector<float>{0.25f, 0.25f, 0.25f});
  BINDERY_REQUIRE_THROWS_WITH_ALL(scaler.unscale(sgd), ValueError, "already called");
  REQUIRE(scaler.step(sgd));
  scaler.update();
  REQUIRE(p.value().to_vector() == std::vector<float>{0.875f, 1.875f, 2.875f});
  REQUIRE(scaler.state().growth_tracker == 1);

  // An inf in the last chunk of q: the step is skipped, the scale halves, the tracker resets.
  set_grads(0.25f, 4999);
  REQUIRE_FALSE(scaler.step(sgd));
  REQUIRE(scaler.found_inf());
  scaler.update();
  REQUIRE(p.value().to_vector() == std::vector<float>{0.875f, 1.875f, 2.875f});
  REQUIRE(scaler.get_scale() == 512.0);
  REQUIRE(scaler.state().growth_tracker == 0);
  // NaN in the first chunk counts too.
  p.set_grad(Tensor<float, B>::full(Shape{3}, std::numeric_limits<float>::quiet_NaN()));
  q.zero_grad();
  REQUIRE_FALSE(scaler.step(sgd));
  scaler.update();
  REQUIRE(scaler.get_scale() == 256.0);

  // Three clean steps in a row double the scale.
  for (int i = 0; i < 3; ++i) {
    p.set_grad(Tensor<float, B>::zeros(Shape{3}));
    REQUIRE(scaler.step(sgd));
    scaler.update();
  }
  REQUIRE(scaler.get_scale() == 512.0);
  REQUIRE(scaler.state().growth_tracker == 0);

  // State round trip and validation.
  optim::GradScaler<float, B> restored;
  restored.load_state(scaler.state());
  REQUIRE(restored.get_scale() == 512.0);
  BINDERY_REQUIRE_THROWS_WITH_ALL(restored.load_state(optim::GradScalerState{-1.0, 0}), ValueError, "scale");
  BINDERY_REQUIRE_THROWS_WITH_ALL(restored.update(), ValueError, "nothing to update");
  BINDERY_REQUIRE_THROWS_WITH_ALL(optim::GradScaler<float>(optim::GradScalerOptions{.growth_factor = 0.5}),
                                  ValueError, "growth_factor");
  BINDERY_REQUIRE_THROWS_WITH_ALL(optim::GradScaler<float>(optim::GradScalerOptions{.init_scale = 0.0}),
                                  ValueError, "init_scale");

  // Disabled: the loss passes through, step() always steps.
  optim::GradScaler<float, B> off(optim::GradScalerOptions{.enabled = false});
  const Var<float, B> loss(Tensor<float, B>::full(Shape{}, 3.0f), true);
  REQUIRE(off.scale(loss).item() == 3.0f);
  REQUIRE(off.get_scale() == 1.0);
  p.set_grad(Tensor<float, B>::full(Shape{3}, std::numeric_limits<float>::infinity()));
  REQUIRE(off.step(sgd));
}

}  // namespace bindery_tests::optim_grad_scaler
