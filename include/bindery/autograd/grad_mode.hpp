// bindery/autograd/grad_mode.hpp — whether ops record the graph on this thread.
#pragma once

namespace bindery {

/// Thread-local switch read by every differentiable op. While it is off, ops return results with no
/// graph attached: no backward closure and no saved activations (inference mode).
class GradMode {
 public:
  static bool is_enabled() { return enabled_ref(); }
  static void set_enabled(bool enabled) { enabled_ref() = enabled; }

 private:
  static bool& enabled_ref() {
    thread_local bool enabled = true;
    return enabled;
  }
};

/// RAII guard: no graph is recorded inside its scope.  { NoGrad guard; auto y = model.forward(x); }
class NoGrad {
 public:
  NoGrad() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGrad() { GradMode::set_enabled(previous_); }
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

/// RAII guard: re-enables recording inside a NoGrad scope.
class EnableGrad {
 public:
  EnableGrad() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(true); }
  ~EnableGrad() { GradMode::set_enabled(previous_); }
  EnableGrad(const EnableGrad&) = delete;
  EnableGrad& operator=(const EnableGrad&) = delete;

 private:
  bool previous_;
};

}  // namespace bindery
