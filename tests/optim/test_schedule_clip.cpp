// Tests of optim::WarmupCosine and optim::clip_grad_norm.
#include "test_util.hpp"
#include "test_schedule_clip_bodies.hpp"

#include <cmath>
#include <numbers>

using namespace bindery;

TEST_CASE("WarmupCosine: linear warmup, cosine decay, then constant", "[optim][schedule]") {
  const optim::WarmupCosine schedule{.base_lr = 1e-3, .min_lr = 1e-5, .warmup_steps = 10, .total_steps = 110};
  CHECK(schedule.lr_at(0) == 0.0);
  CHECK(schedule.lr_at(5) == Approx(5e-4).epsilon(1e-12));
  CHECK(schedule.lr_at(10) == Approx(1e-3).epsilon(1e-12));
  CHECK(schedule.lr_at(60) == Approx((1e-3 + 1e-5) / 2).epsilon(1e-12));  // half way: cos(pi/2) = 0
  // A quarter of the way: min + (base - min) * (1 + cos(pi/4)) / 2.
  CHECK(schedule.lr_at(35) == Approx(1e-5 + (1e-3 - 1e-5) * (1 + std::sqrt(0.5)) / 2).epsilon(1e-12));
  CHECK(schedule.lr_at(110) == 1e-5);
  CHECK(schedule.lr_at(1000) == 1e-5);
  for (int64_t s = 10; s < 110; ++s) CHECK(schedule.lr_at(s + 1) <= schedule.lr_at(s));

  const optim::WarmupCosine no_warmup{.base_lr = 2.0, .warmup_steps = 0, .total_steps = 4};
  CHECK(no_warmup.lr_at(0) == 2.0);
  CHECK(no_warmup.lr_at(2) == Approx(1.0));
  CHECK(no_warmup.lr_at(4) == 0.0);

  REQUIRE_THROWS_AS((optim::WarmupCosine{.base_lr = 1.0, .warmup_steps = 5, .total_steps = 4}.lr_at(0)),
                    ValueError);
}

TEST_CASE("WarmupCosine keeps the groups' lr ratios", "[optim][schedule]") {
  Var<double> a(Tensor<double>::ones({2}), true), b(Tensor<double>::ones({2}), true);
  std::vector<optim::ParamGroup<double>> groups(2);
  groups[0].params = {a};
  groups[0].lr = 1e-3;
  groups[1].params = {b};
  groups[1].lr = 1e-4;
  optim::AdamW<double> optimizer(groups);
  const optim::WarmupCosine schedule{.base_lr = 1e-3, .warmup_steps = 4, .total_steps = 8};
  schedule.apply(optimizer, 2);
  CHECK(optimizer.groups()[0].lr == Approx(5e-4));
  CHECK(optimizer.groups()[1].lr == Approx(5e-5));
  CHECK(optimizer.groups()[1].initial_lr == 1e-4);
  schedule.apply(optimizer, 6);  // cosine half way to min_lr 0
  CHECK(optimizer.groups()[0].lr == Approx(5e-4));
  CHECK(optimizer.groups()[1].lr == Approx(5e-5));
  schedule.apply(optimizer, 8);
  CHECK(optimizer.groups()[0].lr == 0.0);
}
