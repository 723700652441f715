// bindery/optim/optimizer.hpp — the interface every optimizer implements, and its state dict.
//
//   std::unique_ptr<optim::Optimizer<float>> opt = std::make_unique<optim::Sgd<float>>(groups, options);
//   opt->zero_grad(); loss.backward(); opt->step();
//   optim::OptimizerState<float> saved = opt->state_dict();   // JSON + named tensors
//   other->load_state_dict(saved);                             // strict: type, groups, shapes
//
// Why an abstract base class (and not a concept + templates): the optimizer is chosen at run time
// (TrainerOptions::optimizer) and checkpoints accept "any optimizer" through a plain reference, so a
// type-erased handle is needed anyway; a virtual base is the smallest one, and costs one indirect
// call per step()/zero_grad(), nothing next to a pass over every parameter. The update kernels stay
// templates on T and B (nothing virtual runs per element), and code that knows the concrete type
// (AdamW's state(), its options) still uses it directly. Never a backend: backends stay policies.
//
// The state dict (OptimizerState) is what a checkpoint stores, in PyTorch's spirit:
//   hyper: {"type": type_name(), <optimizer-wide hyper-parameters>,
//           "groups": [{"lr", "weight_decay", "initial_lr", "params": count}], <per-parameter counters>}
//   tensors: "<i>.<name>" for parameter i (group order, then parameter order), e.g. "3.exp_avg".
// load_state_dict checks everything before it changes anything: a state of another optimizer type
// or other construction hyper-parameters is a ValueError, other group sizes or a missing, unexpected
// or mis-shaped tensor an nn::StateDictError, a malformed `hyper` a FormatError.
#pragma once

#include <charconv>
#include <cmath>
#include <map>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindery/io/json.hpp"
#include "bindery/nn/module.hpp"
#include "bindery/optim/param_group.hpp"

namespace bindery::optim {

/// An optimizer's complete state (see the file comment): JSON-able hyper-parameters and counters,
/// and named per-parameter tensors.
template <class T, class B = Cpu>
struct OptimizerState {
  nlohmann::json hyper = nlohmann::json::object();
  std::map<std::string, Tensor<T, B>> tensors;
};

/// The interface of SGD, AdamW and any optimizer a user adds (see the file comment for why it is
/// virtual). Holds the parameter groups; subclasses hold the per-parameter state.
template <class T, class B = Cpu>
class Optimizer {
 public:
  virtual ~Optimizer() = default;

  /// "AdamW", "SGD": recorded in state dicts and checkpoints.
  virtual std::string type_name() const = 0;
  /// One update of every parameter that has a gradient (others are skipped, see ParamGroup).
  virtual void step() = 0;
  /// Drops every parameter's gradient (set to undefined, like PyTorch's set_to_none).
  virtual void zero_grad() { detail::zero_grad(groups_); }
  /// The complete state, deep-copied tensors excepted (they share storage with the optimizer's).
  virtual OptimizerState<T, B> state_dict() const = 0;
  /// Restores state_dict() output (deep copies), all or nothing (see the file comment for errors).
  virtual void load_state_dict(const OptimizerState<T, B>& state) = 0;

  /// Appends a group; its parameters start with empty state.
  void add_param_group(ParamGroup<T, B> group) {
    detail::check_group(group, type_name().c_str());
    groups_.push_back(std::move(group));
    groups_changed();
  }
  std::vector<ParamGroup<T, B>>& groups() { return groups_; }
  const std::vector<ParamGroup<T, B>>& groups() const { return groups_; }
  size_t num_groups() const { return groups_.size(); }
  /// Learning rate of group `group` (IndexError when out of range).
  double lr(size_t group = 0) const { return groups_[checked(group)].lr; }
  /// Sets the learning rate of group `group` (IndexError when out of range, ValueError when < 0).
  void set_lr(size_t group, double lr) {
    BINDERY_CHECK(lr >= 0 && std::isfinite(lr), ValueError, type_name(), "::set_lr: learning rate ", lr,
                  " must be finite and >= 0");
    groups_[checked(group)].lr = lr;
  }
  /// Sets the learning rate of every group.
  void set_lr(double lr) {
    for (size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
  }

 protected:
  Optimizer() = default;
  explicit Optimizer(std::vector<ParamGroup<T, B>> groups) : groups_(std::move(groups)) {}
  Optimizer(const Optimizer&) = default;
  Optimizer(Optimizer&&) noexcept = default;
  Optimizer& operator=(const Optimizer&) = default;
  Optimizer& operator=(Optimizer&&) noexcept = default;

  /// Called after add_param_group: resize the per-parameter state.
  virtual void groups_changed() {}

  /// {"type", "groups"}: the part of hyper every optimizer writes.
  nlohmann::json base_hyper() const {
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& group : groups_) {
      groups.push_back({{"lr", group.lr},
                        {"weight_decay", group.weight_decay},
                        {"initial_lr", group.initial_lr},
                        {"params", group.params.size()}});
    }
    return {{"type", type_name()}, {"groups", std::move(groups)}};
  }

  /// A group's restorable hyper-parameters, parsed and checked by check_base.
  struct GroupHyper {
    double lr, weight_decay, initial_lr;
  };

  /// Checks the part of `state` every optimizer shares: its type, the group sizes, each group's
  /// lr / weight decay / initial lr, and tensor names that parse as "<i>.<name>" with <name> in
  /// `tensor_names` and i < parameter count. Returns the groups' hyper-parameters.
  std::vector<GroupHyper> check_base(const OptimizerState<T, B>& state,
                                     const std::vector<std::string>& tensor_names) const {
    const std::string who = type_name() + "::load_state_dict";
    const nlohmann::json& h = state.hyper;
    if (!h.is_object()) malformed(who, "the state's hyper-parameters are not a JSON object");
    const nlohmann::json& type = member(who, h, "type");
    if (!type.is_string()) malformed(who, "\"type\" must be a string, got ", io::json_excerpt(type));
    BINDERY_CHECK(type.get<std::string>() == type_name(), ValueError, who, ": the state is of a ",
                  type.get<std::string>(), " optimizer, not ", type_name(), " (build a ",
                  type.get<std::string>(), " to load it)");
    const nlohmann::json& groups = member(who, h, "groups");
    if (!groups.is_array()) malformed(who, "\"groups\" must be an array, got ", io::json_excerpt(groups));
    std::vector<int64_t> sizes;
    std::vector<GroupHyper> hyper;
    for (const auto& g : groups) {
      if (!g.is_object()) malformed(who, "groups must be objects, got ", io::json_excerpt(g));
      const nlohmann::json& n = member(who, g, "params");
      if (!n.is_number_integer() || n.get<int64_t>() < 0)
        malformed(who, "a group's \"params\" must be a count, got ", io::json_excerpt(n));
      sizes.push_back(n.get<int64_t>());
      GroupHyper values{};
      for (auto [key, out] : {std::pair<const char*, double*>{"lr", &values.lr},
                              {"weight_decay", &values.weight_decay},
                              {"initial_lr", &values.initial_lr}}) {
        const nlohmann::json& v = member(who, g, key);
        if (!v.is_number())
          malformed(who, "a group's \"", key, "\" must be a number, got ", io::json_excerpt(v));
        *out = v.get<double>();
      }
      BINDERY_CHECK(values.lr >= 0 && values.weight_decay >= 0, ValueError, who,
                    ": negative lr or weight decay in the state's groups");
      hyper.push_back(values);
    }
    bool same = sizes.size() == groups_.size();
    for (size_t i = 0; same && i < groups_.size(); ++i)
      same = sizes[i] == static_cast<int64_t>(groups_[i].params.size());
    if (!same) {
      std::string saved = "(", mine = "(";
      for (size_t i = 0; i < sizes.size(); ++i) saved += (i ? ", " : "") + std::to_string(sizes[i]);
      for (size_t i = 0; i < groups_.size(); ++i)
        mine += (i ? ", " : "") + std::to_string(groups_[i].params.size());
      throw nn::StateDictError(::bindery::detail::concat(who, ": the state's optimizer has groups of ", saved,
                                                         ") parameters but this optimizer has ", mine, ")"));
    }
    const size_t count = detail::count_params(groups_);
    for (const auto& [name, tensor] : state.tensors) {
      const size_t dot = name.find('.');
      size_t index = 0;
      const char* first = name.data();
      const char* last = name.data() + (dot == std::string::npos ? 0 : dot);
      const auto [end, error] = std::from_chars(first, last, index);
      const bool ok = dot != std::string::npos && dot > 0 && error == std::errc() && end == last &&
                      index < count && tensor.defined();
      bool known = false;
      for (const auto& allowed : tensor_names) known = known || (ok && name.substr(dot + 1) == allowed);
      BINDERY_CHECK(known, nn::StateDictError, who, ": unexpected tensor '", name, "' (", type_name(),
                    " holds '<parameter index>.<name>' for ", count, " parameters)");
    }
    return hyper;
  }

  /// Sets each group's lr / weight decay / initial lr (after check_base accepted them).
  void apply_groups(const std::vector<GroupHyper>& hyper) {
    for (size_t i = 0; i < groups_.size(); ++i) {
      groups_[i].lr = hyper[i].lr;
      groups_[i].weight_decay = hyper[i].weight_decay;
      groups_[i].initial_lr = hyper[i].initial_lr;
    }
  }

  /// Checks that the state's hyper-parameter `key` equals this optimizer's: a run resumed with other
  /// construction options would not be the same run (ValueError).
  template <class V>
  void check_same(const OptimizerState<T, B>& state, const char* key, V mine) const {
    const std::string who = type_name() + "::load_state_dict";
    const nlohmann::json& v = member(who, state.hyper, key);
    const bool typed = std::is_same_v<V, bool> ? v.is_boolean() : v.is_number();
    if (!typed)
      malformed(who, "\"", key, "\" must be a ", std::is_same_v<V, bool> ? "boolean" : "number", ", got ",
                io::json_excerpt(v));
    const V saved = v.get<V>();
    BINDERY_CHECK(saved == mine, ValueError, who, ": the state's ", type_name(), " ", key, " is ", saved,
                  " but this optimizer's is ", mine, " (construct ", type_name(),
                  " with the state's options)");
  }

  /// The tensor "<index>.<name>" of `state`, or null.
  static const Tensor<T, B>* find_tensor(const OptimizerState<T, B>& state, size_t index, const char* name) {
    const auto it = state.tensors.find(::bindery::detail::concat(index, ".", name));
    return it == state.tensors.end() ? nullptr : &it->second;
  }

  template <class... Parts>
  [[noreturn]] static void malformed(const std::string& who, const Parts&... parts) {
    throw FormatError(::bindery::detail::concat(who, ": malformed state: ", parts...));
  }
  static const nlohmann::json& member(const std::string& who, const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end()) malformed(who, "missing \"", key, "\"");
    return *it;
  }

  std::vector<ParamGroup<T, B>> groups_;

 private:
  size_t checked(size_t group) const {
    BINDERY_CHECK(group < groups_.size(), IndexError, type_name(), ": group ", group, " of ", groups_.size());
    return group;
  }
};

}  // namespace bindery::optim
