// bindery/nn/module.hpp — Module: named parameters, buffers and children; train/eval; state dicts.
//
// A Module registers its parameters (Var leaves that require grad), buffers (Tensors that are saved
// but not trained) and child modules by name, in order. The dotted names it yields are exactly the
// keys of PyTorch's `state_dict()` for the same architecture (`blocks.3.attn.in_proj_weight`), so a
// checkpoint loads by name with no mapping table.
//
// Modules are reference objects, as in PyTorch: not copyable or movable, children held by
// std::shared_ptr. There is no virtual forward: each module has its own typed `forward`, so
// `Block::forward(x, mask)` and `Embedding::forward(ids)` need no common signature.
//
// TUTORIAL: a user module is a class deriving from Module that registers what it owns in its
// constructor and composes ops (or children's forwards) in its forward:
//
//   template <class T, class B = Cpu>
//   class Scale : public nn::Module<T, B> {
//    public:
//     explicit Scale(int64_t dim) {
//       gamma_ = this->register_parameter("gamma", Tensor<T, B>::ones({dim}));
//       proj_ = this->register_module("proj", std::make_shared<nn::Linear<T, B>>(dim, dim));
//     }
//     Var<T, B> forward(const Var<T, B>& x) { return proj_->forward(x * gamma_); }
//    private:
//     Var<T, B> gamma_;
//     std::shared_ptr<nn::Linear<T, B>> proj_;
//   };
//   // named_parameters(): gamma, proj.weight, proj.bias
#pragma once

#include <algorithm>
#include <functional>
#include <type_traits>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bindery/autograd/var.hpp"

namespace bindery::nn {

/// A state dict that does not fit a module: the message lists every missing, unexpected and
/// mis-shaped key.
class StateDictError : public Error {
  using Error::Error;
};

/// Name -> Tensor in insertion order (PyTorch's OrderedDict state_dict). Lookups are O(1).
template <class T, Backend B = Cpu>
class StateDict {
 public:
  using TensorType = Tensor<T, B>;
  using Entry = std::pair<std::string, TensorType>;

  /// Appends `name`; throws ValueError if it is already present.
  void insert(std::string name, TensorType value) {
    BINDERY_CHECK(!contains(name), ValueError, "StateDict::insert: key '", name, "' is already present");
    index_.emplace(name, entries_.size());
    entries_.emplace_back(std::move(name), std::move(value));
  }
  /// Replaces the value of `name` (keeping its position) or appends it.
  void insert_or_assign(const std::string& name, TensorType value) {
    const auto it = index_.find(name);
    if (it == index_.end()) return insert(name, std::move(value));
    entries_[it->second].second = std::move(value);
  }
  /// Removes `name`; returns false when it was absent.
  bool erase(const std::string& name) {
    const auto it = index_.find(name);
    if (it == index_.end()) return false;
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
    index_.clear();
    for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
    return true;
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  /// The tensor stored under `name`, or nullptr.
  const TensorType* find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  /// The tensor stored under `name`; throws StateDictError naming the key.
  const TensorType& at(const std::string& name) const {
    const TensorType* value = find(name);
    BINDERY_CHECK(value != nullptr, nn::StateDictError, "StateDict::at: no key '", name, "' (", size(),
                  " keys)");
    return *value;
  }
  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  bool empty() const { return entries_.empty(); }
  std::vector<std::string> keys() const {
    std::vector<std::string> names;
    names.reserve(entries_.size());
    for (const auto& entry : entries_) names.push_back(entry.first);
    return names;
  }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

/// What a non-strict load_state_dict skipped (PyTorch's _IncompatibleKeys).
struct LoadResult {
  std::vector<std::string> missing_keys;     // in the module, absent from the dict
  std::vector<std::string> unexpected_keys;  // in the dict, absent from the module
};

/// Base of every module. See the file comment.
template <class T, Backend B = Cpu>
class Module {
 public:
  using value_type = T;
  using backend_type = B;
  using VarType = Var<T, B>;
  using TensorType = Tensor<T, B>;

  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;

  // ---- registration (call from the constructor, in PyTorch's order) ----------------------------

  /// Makes `value` a parameter named `name` and returns its Var (a handle: keep it as a member).
  /// Optional parameters (a bias that is switched off) are simply not registered, as in PyTorch.
  VarType register_parameter(const std::string& name, TensorType value, bool requires_grad = true) {
    check_new_name(name, "register_parameter");
    BINDERY_CHECK(value.defined(), ValueError, "register_parameter: the value of '", name,
                  "' is undefined; do not register optional parameters that are switched off");
    VarType var(std::move(value), requires_grad);
    parameters_.push_back({name, var});
    return var;
  }
  /// Registers a buffer: state that is saved (when `persistent`) and loaded but never trained.
  /// Returns a handle sharing its storage, which load_state_dict overwrites in place.
  TensorType register_buffer(const std::string& name, TensorType value, bool persistent = true) {
    check_new_name(name, "register_buffer");
    BINDERY_CHECK(value.defined(), ValueError, "register_buffer: the value of '", name, "' is undefined");
    buffers_.push_back({name, value, persistent});
    return value;
  }
  /// Registers a child module (its parameters become `name.<...>`) and returns it.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    static_assert(std::is_base_of_v<Module, M>, "register_module: M must derive from Module<T, B>");
    check_new_name(name, "register_module");
    BINDERY_CHECK(module != nullptr, ValueError, "register_module: module '", name, "' is null");
    BINDERY_CHECK(static_cast<const Module*>(module.get()) != this, ValueError, "register_module: '", name,
                  "' would make the module its own child");
    children_.push_back({name, module});
    return module;
  }

  // ---- traversal ---------------------------------------------------------------------------------

  /// Parameters with dotted names, own first then each child's (PyTorch order). A parameter shared
  /// by two modules is listed once, under its first name.
  std::vector<std::pair<std::string, VarType>> named_parameters(bool recurse = true) const {
    std::vector<std::pair<std::string, VarType>> out;
    std::unordered_set<const void*> seen;
    for_each_module(recurse, [&](const std::string& prefix, const Module& m) {
      for (const auto& p : m.parameters_) {
        if (seen.insert(p.var.node().get()).second) out.emplace_back(prefix + p.name, p.var);
      }
    });
    return out;
  }
  std::vector<VarType> parameters(bool recurse = true) const {
    std::vector<VarType> out;
    for (auto& [name, var] : named_parameters(recurse)) out.push_back(var);
    return out;
  }
  /// Buffers (persistent or not) with dotted names.
  std::vector<std::pair<std::string, TensorType>> named_buffers(bool recurse = true) const {
    std::vector<std::pair<std::string, TensorType>> out;
    for_each_module(recurse, [&](const std::string& prefix, const Module& m) {
      for (const auto& b : m.buffers_) out.emplace_back(prefix + b.name, b.value);
    });
    return out;
  }
  /// Direct children, in registration order.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
    for (const auto& c : children_) out.emplace_back(c.name, c.module);
    return out;
  }
  /// This module ("") and every descendant, pre-order, each once (non-owning pointers).
  std::vector<std::pair<std::string, Module*>> named_modules() {
    std::vector<std::pair<std::string, Module*>> out;
    for_each_module(true, [&](const std::string& prefix, const Module& m) {
      // The walk is const; the modules are ours to hand out mutably since `this` is not const.
      out.emplace_back(prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1),
                       const_cast<Module*>(&m));
    });
    return out;
  }
  /// Calls fn on every descendant, then on this module (torch's Module.apply): custom init.
  Module& apply(const std::function<void(Module&)>& fn) {
    for (auto& c : children_) c.module->apply(fn);
    fn(*this);
    return *this;
  }
  /// The descendant at a dotted path ("blocks.3.attn"; "" is this module); throws IndexError naming the path.
  Module& submodule(const std::string& path) {
    Module* current = this;
    if (path.empty()) return *current;
    size_t start = 0;
    while (start <= path.size()) {
      const size_t dot = std::min(path.find('.', start), path.size());
      const std::string part = path.substr(start, dot - start);
      Module* next = nullptr;
      for (auto& c : current->children_) {
        if (c.name == part) next = c.module.get();
      }
      BINDERY_CHECK(next != nullptr, IndexError, "submodule: no child '", part, "' on the way to '", path,
                    "'");
      current = next;
      start = dot + 1;
    }
    return *current;
  }
  /// Number of parameter elements (each shared parameter counted once).
  int64_t num_parameters(bool trainable_only = false) const {
    int64_t count = 0;
    for (const auto& var : parameters()) {
      if (!trainable_only || var.requires_grad()) count += var.numel();
    }
    return count;
  }

  // ---- modes -------------------------------------------------------------------------------------

  /// Sets training mode here and in every descendant (dropout and drop-path are active in training).
  Module& train(bool on = true) {
    training_ = on;
    for (auto& c : children_) c.module->train(on);
    return *this;
  }
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }
  /// Forgets the gradients of every parameter.
  void zero_grad() {
    for (auto var : parameters()) var.zero_grad();
  }
  /// Freezes (false) or unfreezes (true) every parameter: frozen ones get no gradient work.
  Module& set_requires_grad(bool requires_grad) {
    for (auto var : parameters()) var.set_requires_grad(requires_grad);
    return *this;
  }

  // ---- state dicts -------------------------------------------------------------------------------

  /// Parameters and persistent buffers by dotted name, module by module: own parameters, own
  /// buffers, then each child (PyTorch's order). The tensors SHARE storage with the module (clone()
  /// them for a snapshot).
  StateDict<T, B> state_dict() const {
    StateDict<T, B> dict;
    for (auto& slot : state_slots()) dict.insert(slot.key, slot.value());
    return dict;
  }
  /// Copies `dict` into the parameters and buffers in place. Everything is checked before anything is
  /// written: on error the module is unchanged. Missing and unexpected keys are errors when `strict`
  /// (else returned); a shape mismatch is always an error (as in PyTorch). One StateDictError lists
  /// every problem.
  LoadResult load_state_dict(const StateDict<T, B>& dict, bool strict = true) {
    const std::vector<StateSlot> slots = state_slots();
    LoadResult result;
    std::vector<std::string> mismatched;
    std::unordered_set<std::string> expected;
    for (const auto& slot : slots) {
      expected.insert(slot.key);
      const TensorType* value = dict.find(slot.key);
      if (value == nullptr) {
        result.missing_keys.push_back(slot.key);
      } else if (!(value->shape() == slot.value().shape())) {
        mismatched.push_back(::bindery::detail::concat(slot.key, ": checkpoint ", value->shape(),
                                                       " vs model ", slot.value().shape()));
      }
    }
    for (const auto& entry : dict) {
      if (!expected.count(entry.first)) result.unexpected_keys.push_back(entry.first);
    }
    const bool key_errors = strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
    if (key_errors || !mismatched.empty()) {
      std::string message = "load_state_dict: the state dict does not fit the module";
      auto list = [&message](const char* what, const std::vector<std::string>& items) {
        if (items.empty()) return;
        message += ::bindery::detail::concat("\n  ", what, " (", items.size(), "): ");
        for (size_t i = 0; i < items.size(); ++i) message += (i ? ", " : "") + items[i];
      };
      if (strict) list("missing keys", result.missing_keys);
      if (strict) list("unexpected keys", result.unexpected_keys);
      list("shape mismatches", mismatched);
      throw StateDictError(message);
    }
    for (const auto& slot : slots) {
      const TensorType* value = dict.find(slot.key);
      if (value == nullptr) continue;
      if (slot.var.defined()) {
        VarType var = slot.var;
        var.assign(*value);
      } else {
        TensorType buffer = slot.buffer;
        buffer.copy_(*value);
      }
    }
    return result;
  }

 private:
  struct ParameterSlot {
    std::string name;
    VarType var;
  };
  struct BufferSlot {
    std::string name;
    TensorType value;
    bool persistent;
  };
  struct ChildSlot {
    std::string name;
    std::shared_ptr<Module> module;
  };
  struct StateSlot {  // one state-dict entry: a parameter or a buffer
    std::string key;
    VarType var;
    TensorType buffer;
    const TensorType& value() const { return var.defined() ? var.value() : buffer; }
  };

  void check_new_name(const std::string& name, const char* what) const {
    BINDERY_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, what, ": name '", name,
                  "' must be non-empty and contain no '.'");
    bool taken = false;
    for (const auto& p : parameters_) taken = taken || p.name == name;
    for (const auto& b : buffers_) taken = taken || b.name == name;
    for (const auto& c : children_) taken = taken || c.name == name;
    BINDERY_CHECK(!taken, ValueError, what, ": name '", name, "' is already registered in this module");
  }

  /// Pre-order walk: fn(prefix ending in '.', or "" for this module, module). Each module once.
  template <class F>
  void for_each_module(bool recurse, F&& fn) const {
    std::unordered_set<const Module*> seen{this};
    fn(std::string(), *this);
    if (recurse) walk_children(std::string(), seen, fn);
  }
  template <class F>
  void walk_children(const std::string& prefix, std::unordered_set<const Module*>& seen, F& fn) const {
    for (const auto& c : children_) {
      if (!seen.insert(c.module.get()).second) continue;
      const std::string child_prefix = prefix + c.name + ".";
      fn(child_prefix, *c.module);
      c.module->walk_children(child_prefix, seen, fn);
    }
  }

  /// State-dict entries, not deduplicated (a shared child appears under each of its names).
  std::vector<StateSlot> state_slots() const {
    std::vector<StateSlot> slots;
    collect_state(std::string(), slots);
    return slots;
  }
  void collect_state(const std::string& prefix, std::vector<StateSlot>& slots) const {
    for (const auto& p : parameters_) slots.push_back({prefix + p.name, p.var, TensorType()});
    for (const auto& b : buffers_) {
      if (b.persistent) slots.push_back({prefix + b.name, VarType(), b.value});
    }
    for (const auto& c : children_) c.module->collect_state(prefix + c.name + ".", slots);
  }

  std::vector<ParameterSlot> parameters_;
  std::vector<BufferSlot> buffers_;
  std::vector<ChildSlot> children_;
  bool training_ = true;
};

}  // namespace bindery::nn
