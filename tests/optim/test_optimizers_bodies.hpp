// tests/optim/test_optimizers_bodies.hpp — the templated test bodies of test_optimizers.cpp, one instance per
// backend of bindery::testing::Backends: Cpu in test_optim (test_optimizers.cpp includes this file), Cpu and
// Cuda in test_cuda (tests/cuda/test_layers_cuda.cu includes it). Cpu-only cases stay in the .cpp.
#pragma once

#include "test_util.hpp"

#include <cmath>

namespace bindery_tests::optim_optimizers {

using namespace bindery;

/// A deterministic, sign-changing gradient for element i of parameter k at step s.
inline double fake_grad(int s, int k, size_t i) {
  return std::sin(1.3 * s + 0.7 * static_cast<double>(i) + 2.1 * k) * (1.0 + 0.5 * k);
}

/// torch.optim.AdamW for one parameter, one element at a time, in double.
struct ReferenceAdamW {
  ReferenceAdamW(double lr_, double weight_decay_, double beta1_ = 0.9, double beta2_ = 0.999,
                 double eps_ = 1e-8)
      : lr(lr_), weight_decay(weight_decay_), beta1(beta1_), beta2(beta2_), eps(eps_) {}
  double lr, weight_decay, beta1, beta2, eps;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1.0 - lr * weight_decay;
      m[i] = beta1 * m[i] + (1.0 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1.0 - beta2) * g[i] * g[i];
      const double bias1 = 1.0 - std::pow(beta1, t), bias2 = 1.0 - std::pow(beta2, t);
      p[i] -= lr / bias1 * m[i] / (std::sqrt(v[i] / bias2) + eps);
    }
  }
};

/// torch.optim.SGD for one parameter.
struct ReferenceSgd {
  double lr, weight_decay, momentum, dampening;
  bool nesterov;
  std::vector<double> buffer;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    const bool first = buffer.empty();
    if (first) buffer.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + weight_decay * p[i];
      if (momentum != 0.0) {
        buffer[i] = first ? d : momentum * buffer[i] + (1.0 - dampening) * d;
        d = nesterov ? d + momentum * buffer[i] : buffer[i];
      }
      p[i] -= lr * d;
    }
  }
};

inline std::vector<double> initial_values(size_t n, int k) {
  std::vector<double> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = 0.5 - 0.3 * static_cast<double>(i) + 0.25 * k;
  return values;
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <class T>
std::vector<T> from_double(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

/// Runs `Optimizer` on a setup with two groups (different lr and weight decay), a frozen parameter
/// and a parameter that misses its gradient at step 2, and compares every step with `make_ref`.
template <class T, class B, class Optimizer, class MakeRef>
void check_trajectory(const std::function<Optimizer(std::vector<optim::ParamGroup<T, B>>)>& make_optimizer,
                      MakeRef make_ref, double tolerance) {
  const std::vector<Shape> shapes = {{2, 3}, {4}, {3}, {2, 2}};
  std::vector<Var<T, B>> params;
  for (size_t k = 0; k < shapes.size(); ++k) {
    params.emplace_back(Tensor<T, B>::from_vector(
                            from_double<T>(initial_values(size_t(shapes[k].numel()), int(k))), shapes[k]),
                        true);
  }
  params[3].set_requires_grad(false);  // frozen: never touched, even by weight decay
  std::vector<optim::ParamGroup<T, B>> groups(2);
  groups[0].params = {params[0], params[3]};
  groups[0].lr = 0.05;
  groups[0].weight_decay = 0.1;
  groups[1].params = {params[1], params[2]};
  groups[1].lr = 0.01;
  groups[1].weight_decay = 0.0;
  Optimizer optimizer = make_optimizer(groups);

  const double lrs[4] = {0.05, 0.01, 0.01, 0.05}, decays[4] = {0.1, 0.0, 0.0, 0.1};
  std::vector<decltype(make_ref(0.0, 0.0))> refs;
  std::vector<std::vector<double>> expected;
  for (size_t k = 0; k < shapes.size(); ++k) {
    refs.push_back(make_ref(lrs[k], decays[k]));
    expected.push_back(initial_values(size_t(shapes[k].numel()), int(k)));
  }
  for (int s = 0; s < 6; ++s) {
    optimizer.zero_grad();
    for (size_t k = 0; k < shapes.size(); ++k) {
      if (k == 2 && s == 2) continue;  // no gradient this step: skipped, state not advanced
      std::vector<double> g(size_t(shapes[k].numel()));
      for (size_t i = 0; i < g.size(); ++i) g[i] = fake_grad(s, int(k), i);
      if (k != 3) refs[k].step(expected[k], g);
      // A frozen parameter with a (stray) gradient is still skipped.
      params[k].set_grad(Tensor<T, B>::from_vector(from_double<T>(g), shapes[k]));
    }
    optimizer.step();
    for (size_t k = 0; k < shapes.size(); ++k) {
      INFO("step " << s << ", parameter " << k);
      bindery::testing::require_values(params[k].value(), shapes[k], expected[k], tolerance);
    }
  }
  bindery::testing::require_values(params[3].value(), shapes[3],
                                   to_double(from_double<T>(initial_values(4, 3))), 0.0);
}

TEMPLATE_LIST_TEST_CASE("AdamW matches torch.optim.AdamW step by step", "[optim][adamw]",
                        bindery::testing::Backends) {
  using B = TestType;
  auto make_ref = [](double lr, double wd) { return ReferenceAdamW{lr, wd}; };
  SECTION("double") {
    check_trajectory<double, B, optim::AdamW<double, B>>(
        [](auto groups) { return optim::AdamW<double, B>(groups); }, make_ref, 1e-12);
  }
  SECTION("float") {
    check_trajectory<float, B, optim::AdamW<float, B>>(
        [](auto groups) { return optim::AdamW<float, B>(groups); }, make_ref, 2e-6);
  }
  SECTION("multi-tensor launch (one pass over every parameter)") {
    check_trajectory<double, B, optim::AdamW<double, B>>(
        [](auto groups) { return optim::AdamW<double, B>(groups, {.multi_tensor = true}); }, make_ref, 1e-12);
    check_trajectory<float, B, optim::AdamW<float, B>>(
        [](auto groups) { return optim::AdamW<float, B>(groups, {.multi_tensor = true}); }, make_ref, 2e-6);
  }
  SECTION("per-parameter launch") {
    check_trajectory<float, B, optim::AdamW<float, B>>(
        [](auto groups) { return optim::AdamW<float, B>(groups, {.multi_tensor = false}); }, make_ref, 2e-6);
  }
  SECTION("custom betas and eps") {
    auto ref = [](double lr, double wd) { return ReferenceAdamW{lr, wd, 0.8, 0.95, 1e-3}; };
    check_trajectory<double, B, optim::AdamW<double, B>>(
        [](auto groups) {
          return optim::AdamW<double, B>(groups, {.beta1 = 0.8, .beta2 = 0.95, .eps = 1e-3});
        },
        ref, 1e-12);
  }
}

TEMPLATE_LIST_TEST_CASE("SGD matches torch.optim.SGD step by step", "[optim][sgd]",
                        bindery::testing::Backends) {
  using B = TestType;
  SECTION("momentum with dampening") {
    auto ref = [](double lr, double wd) { return ReferenceSgd{lr, wd, 0.9, 0.25, false, {}}; };
    check_trajectory<double, B, optim::Sgd<double, B>>(
        [](auto groups) { return optim::Sgd<double, B>(groups, {.momentum = 0.9, .dampening = 0.25}); }, ref,
        1e-12);
    check_trajectory<float, B, optim::Sgd<float, B>>(
        [](auto groups) { return optim::Sgd<float, B>(groups, {.momentum = 0.9, .dampening = 0.25}); }, ref,
        2e-6);
  }
  SECTION("nesterov") {
    auto ref = [](double lr, double wd) { return ReferenceSgd{lr, wd, 0.8, 0.0, true, {}}; };
    check_trajectory<double, B, optim::Sgd<double, B>>(
        [](auto groups) { return optim::Sgd<double, B>(groups, {.momentum = 0.8, .nesterov = true}); }, ref,
        1e-12);
  }
  SECTION("plain") {
    auto ref = [](double lr, double wd) { return ReferenceSgd{lr, wd, 0.0, 0.0, false, {}}; };
    check_trajectory<double, B, optim::Sgd<double, B>>(
        [](auto groups) { return optim::Sgd<double, B>(groups); }, ref, 1e-12);
  }
}

TEMPLATE_LIST_TEST_CASE("optimizers minimise a quadratic", "[optim]", bindery::testing::Backends) {
  using B = TestType;
  // f(x) = sum(w * (x - c)²), minimum at c.
  const auto c = Tensor<double, B>::from_vector({1.0, -2.0, 0.5, 3.0});
  const Var<double, B> target(c), weights(Tensor<double, B>::from_vector({1.0, 0.5, 2.0, 0.1}));
  auto run = [&](auto& optimizer, Var<double, B>& x, int steps) {
    double loss = 0.0;
    for (int s = 0; s < steps; ++s) {
      optimizer.zero_grad();
      Var<double, B> diff = x - target;
      Var<double, B> f = ops::sum(weights * diff * diff);
      f.backward();
      loss = f.item();
      optimizer.step();
    }
    return loss;
  };
  SECTION("AdamW") {
    Var<double, B> x(Tensor<double, B>::zeros({4}), true);
    optim::AdamW<double, B> optimizer({x}, {.lr = 0.05, .weight_decay = 0.0});
    const double first = run(optimizer, x, 1);
    const double last = run(optimizer, x, 1500);
    CHECK(first == Approx(4.4));  // sum(w * c²)
    CHECK(last < 1e-8);
    bindery::testing::require_values(x.value(), Shape{4}, c.to_vector(), 1e-4);
  }
  SECTION("SGD with nesterov momentum") {
    Var<double, B> x(Tensor<double, B>::zeros({4}), true);
    optim::Sgd<double, B> optimizer({x}, {.lr = 0.05, .momentum = 0.9, .nesterov = true});
    run(optimizer, x, 800);
    bindery::testing::require_values(x.value(), Shape{4}, c.to_vector(), 1e-6);
  }
}

TEMPLATE_LIST_TEST_CASE("AdamW state round-trips through state()/load_state()", "[optim][adamw]",
                        bindery::testing::Backends) {
  using B = TestType;
  auto make_param = [] { return Var<double, B>(Tensor<double, B>::from_vector({0.5, -1.0, 2.0}), true); };
  auto grad_at = [](int s) { return Tensor<double, B>::from_vector({std::sin(s + 1.0), 0.3 * s, -1.0}); };
  Var<double, B> a = make_param(), frozen(Tensor<double, B>::ones({2}), false);
  optim::AdamW<double, B> original({a, frozen}, {.lr = 0.1});
  for (int s = 0; s < 3; ++s) {
    a.set_grad(grad_at(s));
    original.step();
  }
  REQUIRE(original.state().size() == 2);
  CHECK(original.state()[0].step == 3);
  CHECK(original.state()[1].step == 0);
  CHECK_FALSE(original.state()[1].exp_avg.defined());

  Var<double, B> b(a.value().clone(), true), frozen_b(Tensor<double, B>::ones({2}), false);
  optim::AdamW<double, B> resumed({b, frozen_b}, {.lr = 0.1});
  resumed.load_state(original.state());
  for (int s = 3; s < 6; ++s) {
    a.set_grad(grad_at(s));
    b.set_grad(grad_at(s));
    original.step();
    resumed.step();
  }
  bindery::testing::require_values(b.value(), Shape{3}, a.value().to_vector(), 0.0);
  CHECK(resumed.state()[0].step == 6);

  std::vector<optim::AdamWState<double, B>> wrong = original.state();
  wrong[0].exp_avg = Tensor<double, B>::zeros({2, 2});
  BINDERY_REQUIRE_THROWS_WITH_ALL(resumed.load_state(wrong), ShapeError, "(3,)", "(2, 2)");
  wrong.pop_back();
  BINDERY_REQUIRE_THROWS_WITH_ALL(resumed.load_state(wrong), ShapeError, "1 parameter states for 2");
}

TEMPLATE_LIST_TEST_CASE("SGD state round-trips and options are validated", "[optim][sgd]",
                        bindery::testing::Backends) {
  using B = TestType;
  Var<float, B> a(Tensor<float, B>::from_vector({1.0f, 2.0f}), true);
  optim::Sgd<float, B> sgd({a}, {.lr = 0.1, .momentum = 0.5});
  a.set_grad(Tensor<float, B>::from_vector({1.0f, -1.0f}));
  sgd.step();
  bindery::testing::require_values(sgd.state()[0].momentum_buffer, Shape{2}, {1.0, -1.0});
  bindery::testing::require_values(a.value(), Shape{2}, {0.9, 2.1}, 1e-6);
  sgd.load_state(sgd.state());
  std::vector<optim::SgdState<float, B>> wrong(1);
  wrong[0].momentum_buffer = Tensor<float, B>::zeros({3});
  BINDERY_REQUIRE_THROWS_WITH_ALL(sgd.load_state(wrong), ShapeError, "(2,)", "(3,)");

  REQUIRE_THROWS_AS((optim::Sgd<float, B>({a}, {.momentum = 0.0, .nesterov = true})), ValueError);
  REQUIRE_THROWS_AS((optim::AdamW<float, B>({a}, {.beta1 = 1.0})), ValueError);
  REQUIRE_THROWS_AS((optim::AdamW<float, B>({a}, {.lr = -1.0})), ValueError);
}

TEMPLATE_LIST_TEST_CASE("AdamW: the multi-tensor and per-parameter launches are bit-identical",
                        "[optim][adamw]", bindery::testing::Backends) {
  using B = TestType;
  const std::vector<Shape> shapes = {{3, 5}, {1}, {4097}, {2, 2, 2}, {70}};
  auto run = [&](bool multi) {
    std::vector<Var<float, B>> params;
    for (size_t k = 0; k < shapes.size(); ++k) {
      params.push_back(bindery::testing::random_var<float, B>(shapes[k], 100 + k));
    }
    std::vector<optim::ParamGroup<float, B>> groups = {{{params[0], params[1], params[2]}, 1e-2, 0.1},
                                                       {{params[3], params[4]}, 3e-3, 0.0}};
    optim::AdamW<float, B> optimizer(groups, {.multi_tensor = multi});
    for (int s = 0; s < 5; ++s) {
      optimizer.zero_grad();
      for (size_t k = 0; k < shapes.size(); ++k) {
        if (k == 1 && s % 2 == 1) continue;  // parameters skipped on some steps keep their own step count
        params[k].set_grad(
            bindery::testing::random_var<float, B>(shapes[k], 1000 * s + k, -2, 2, false).value());
      }
      optimizer.step();
    }
    std::vector<std::vector<float>> values;
    for (const auto& p : params) values.push_back(p.value().to_vector());
    for (const auto& state : optimizer.state()) values.push_back(state.exp_avg_sq.to_vector());
    return values;
  };
  REQUIRE(run(true) == run(false));
}

/// Two parameters in two groups plus one that never gets a gradient, stepped `steps` times through
/// the Optimizer interface with gradients that depend on the step.
template <class B>
struct InterfaceRun {
  Var<double, B> a{Tensor<double, B>::from_vector({0.5, -1.0, 2.0}), true};
  Var<double, B> b{Tensor<double, B>::from_vector({1.0, 0.25, -0.5, 3.0}, {2, 2}), true};
  Var<double, B> idle{Tensor<double, B>::ones({2}), true};
  std::vector<optim::ParamGroup<double, B>> groups() { return {{{a, idle}, 0.1, 0.01}, {{b}, 0.05, 0.0}}; }
  void step(optim::Optimizer<double, B>& opt, int s) {
    opt.zero_grad();
    a.set_grad(Tensor<double, B>::from_vector({std::sin(s + 1.0), 0.3 * s, -1.0}));
    b.set_grad(Tensor<double, B>::from_vector({std::cos(0.5 * s), -0.2, 0.1 * s, 1.0}, {2, 2}));
    opt.step();
  }
  std::vector<std::vector<double>> values() const {
    return {a.value().to_vector(), b.value().to_vector(), idle.value().to_vector()};
  }
};

TEMPLATE_LIST_TEST_CASE("Optimizer interface: state_dict round trip resumes SGD and AdamW exactly",
                        "[optim][optimizer]", bindery::testing::Backends) {
  using B = TestType;
  using Factory = std::function<std::unique_ptr<optim::Optimizer<double, B>>(InterfaceRun<B>&)>;
  const std::vector<std::pair<std::string, Factory>> kinds = {
      {"AdamW",
       [](InterfaceRun<B>& r) {
         return std::make_unique<optim::AdamW<double, B>>(r.groups(), optim::AdamWOptions{.beta2 = 0.99});
       }},
      {"SGD", [](InterfaceRun<B>& r) {
         return std::make_unique<optim::SGD<double, B>>(r.groups(),
                                                        optim::SgdOptions{.momentum = 0.9, .nesterov = true});
       }}};
  for (const auto& [name, make] : kinds) {
    INFO(name);
    InterfaceRun<B> straight, first, resumed;
    auto opt_straight = make(straight), opt_first = make(first), opt_resumed = make(resumed);
    REQUIRE(opt_first->type_name() == name);
    for (int s = 0; s < 3; ++s) {
      straight.step(*opt_straight, s);
      first.step(*opt_first, s);
    }
    opt_first->set_lr(1, 0.02);  // group hyper-parameters travel with the state
    opt_first->groups()[0].initial_lr = 0.1;
    opt_straight->set_lr(1, 0.02);
    for (int s = 3; s < 6; ++s) straight.step(*opt_straight, s);

    const optim::OptimizerState<double, B> saved = opt_first->state_dict();
    REQUIRE(saved.hyper.at("type") == name);
    REQUIRE(saved.hyper.at("groups").size() == 2);
    // The parameter without a gradient has no state tensor; the others do.
    const std::string tensor = name == "AdamW" ? "exp_avg" : "momentum_buffer";
    REQUIRE(saved.tensors.count("0." + tensor) == 1);
    REQUIRE(saved.tensors.count("1." + tensor) == 0);
    REQUIRE(saved.tensors.count("2." + tensor) == 1);
    // A JSON round trip of hyper (what a checkpoint does) keeps it exact.
    const optim::OptimizerState<double, B> reparsed{nlohmann::json::parse(saved.hyper.dump()), saved.tensors};

    resumed.a.assign(first.a.value());
    resumed.b.assign(first.b.value());
    opt_resumed->load_state_dict(reparsed);
    REQUIRE(opt_resumed->lr(1) == 0.02);
    REQUIRE(opt_resumed->groups()[0].initial_lr == 0.1);
    REQUIRE(opt_resumed->state_dict().hyper == saved.hyper);
    for (int s = 3; s < 6; ++s) resumed.step(*opt_resumed, s);
    REQUIRE(resumed.values() == straight.values());  // bit-identical
    // The restored state is a copy: stepping it does not touch the saved tensors.
    REQUIRE(saved.tensors.at("0." + tensor).to_vector() ==
            opt_first->state_dict().tensors.at("0." + tensor).to_vector());
  }
}

TEMPLATE_LIST_TEST_CASE("Optimizer interface: load_state_dict refuses what does not fit, changes nothing",
                        "[optim][optimizer]", bindery::testing::Backends) {
  using B = TestType;
  InterfaceRun<B> run, other;
  optim::AdamW<double, B> adamw(run.groups());
  optim::Sgd<double, B> sgd(run.groups(), {.momentum = 0.5});
  run.step(adamw, 0);
  run.step(sgd, 1);
  const auto adamw_state = adamw.state_dict();
  const auto sgd_state = sgd.state_dict();

  optim::Sgd<double, B> target(other.groups(), {.momentum = 0.5});
  optim::AdamW<double, B> target_adamw(other.groups());
  BINDERY_REQUIRE_THROWS_WITH_ALL(target.load_state_dict(adamw_state), ValueError, "AdamW optimizer",
                                  "not SGD");
  BINDERY_REQUIRE_THROWS_WITH_ALL(target_adamw.load_state_dict(sgd_state), ValueError, "SGD optimizer",
                                  "not AdamW");
  optim::Sgd<double, B> other_momentum(other.groups(), {.momentum = 0.9});
  BINDERY_REQUIRE_THROWS_WITH_ALL(other_momentum.load_state_dict(sgd_state), ValueError, "momentum", "0.5",
                                  "0.9");

  auto mis_shaped = sgd_state;
  mis_shaped.tensors["2.momentum_buffer"] = Tensor<double, B>::zeros({4});
  BINDERY_REQUIRE_THROWS_WITH_ALL(target.load_state_dict(mis_shaped), nn::StateDictError, "2.momentum_buffer",
                                  "(4,)", "(2, 2)");
  auto unexpected = sgd_state;
  unexpected.tensors["7.momentum_buffer"] = Tensor<double, B>::zeros({2});
  BINDERY_REQUIRE_THROWS_WITH_ALL(target.load_state_dict(unexpected), nn::StateDictError,
                                  "unexpected tensor '7.momentum_buffer'");
  unexpected = sgd_state;
  unexpected.tensors["0.exp_avg"] = Tensor<double, B>::zeros({3});
  BINDERY_REQUIRE_THROWS_WITH_ALL(target.load_state_dict(unexpected), nn::StateDictError, "'0.exp_avg'");
  auto missing = adamw_state;
  missing.tensors.erase("2.exp_avg_sq");
  BINDERY_REQUIRE_THROWS_WITH_ALL(target_adamw.load_state_dict(missing), nn::StateDictError, "parameter 2",
                                  "no exp_avg_sq");

  optim::Sgd<double, B> one_group(std::vector<optim::ParamGroup<double, B>>{{{other.a, other.idle, other.b}}},
                                  {.momentum = 0.5});
  BINDERY_REQUIRE_THROWS_WITH_ALL(one_group.load_state_dict(sgd_state), nn::StateDictError,
                                  "groups of (2, 1)", "(3)");
  auto malformed = adamw_state;
  malformed.hyper["steps"] = "three";
  BINDERY_REQUIRE_THROWS_WITH_ALL(target_adamw.load_state_dict(malformed), FormatError, "steps");

  // Nothing changed by the refused loads.
  REQUIRE(target.state_dict().tensors.empty());
  REQUIRE(target_adamw.state_dict().tensors.empty());
  REQUIRE(target_adamw.state_dict().hyper.at("steps") == nlohmann::json({0, 0, 0}));
  REQUIRE(target.lr(0) == 0.1);

  BINDERY_REQUIRE_THROWS_WITH_ALL(target.lr(2), IndexError, "group 2 of 2");
  BINDERY_REQUIRE_THROWS_WITH_ALL(target.set_lr(0, -1.0), ValueError, "learning rate");
  target.set_lr(0.3);
  REQUIRE((target.lr(0) == 0.3 && target.lr(1) == 0.3));
}

}  // namespace bindery_tests::optim_optimizers
