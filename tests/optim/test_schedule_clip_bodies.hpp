// tests/optim/test_schedule_clip_bodies.hpp — the templated test bodies of test_schedule_clip.cpp, one
// instance per backend of bindery::testing::Backends: Cpu in test_optim (test_schedule_clip.cpp includes this
// file), Cpu and Cuda in test_cuda (tests/cuda/test_layers_cuda.cu includes it). Cpu-only cases stay in the
// .cpp.
#pragma once

#include "test_util.hpp"

#include <cmath>
#include <numbers>

namespace bindery_tests::optim_schedule_clip {

using namespace bindery;

TEMPLATE_LIST_TEST_CASE("clip_grad_norm scales by the global L2 norm", "[optim][clip]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<float, B> a(Tensor<float, B>::zeros({2}), true), b(Tensor<float, B>::zeros({1, 1}), true),
      no_grad(Tensor<float, B>::zeros({3}), true);
  auto set = [&] {
    a.set_grad(Tensor<float, B>::from_vector({3.0f, 4.0f}));
    b.set_grad(Tensor<float, B>::from_vector({12.0f}, Shape{1, 1}));
  };
  set();
  // Below the threshold: unchanged, the norm sqrt(9 + 16 + 144) = 13 is returned.
  CHECK(optim::clip_grad_norm<float, B>({a, b, no_grad}, 20.0) == Approx(13.0));
  bindery::testing::require_values(a.grad(), Shape{2}, {3, 4});
  // Above: every gradient times 6.5 / (13 + 1e-6).
  const double coefficient = 6.5 / (13.0 + 1e-6);
  CHECK(optim::clip_grad_norm<float, B>({a, b, no_grad}, 6.5) == Approx(13.0));
  bindery::testing::require_values(a.grad(), Shape{2}, {3 * coefficient, 4 * coefficient}, 1e-6);
  bindery::testing::require_values(b.grad(), Shape{1, 1}, {12 * coefficient}, 1e-6);
  CHECK_FALSE(no_grad.has_grad());
  CHECK(optim::grad_norm<float, B>({a, b}) == Approx(6.5).epsilon(1e-6));
  // Through groups: one global norm over both groups.
  set();
  std::vector<optim::ParamGroup<float, B>> groups(2);
  groups[0].params = {a};
  groups[1].params = {b};
  CHECK(optim::clip_grad_norm(groups, 1.0) == Approx(13.0));
  CHECK(optim::grad_norm<float, B>({a, b}) == Approx(1.0).epsilon(1e-5));
  REQUIRE_THROWS_AS((optim::clip_grad_norm<float, B>({a}, -1.0)), ValueError);
}

}  // namespace bindery_tests::optim_schedule_clip
