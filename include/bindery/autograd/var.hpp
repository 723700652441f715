// bindery/autograd/var.hpp — Var<T, B>, the node of the define-by-run tape.
//
// A Var is a handle to a Node: the value tensor, the accumulated gradient, and — for a Var made by
// an op — the op's inputs and a backward closure that maps dL/d(output) to dL/d(each input).
// The closure captures only what backward needs (flashlight's "withoutData" idea), so the graph
// keeps alive exactly the activations the gradient formula uses.
//
//   Var<double> x(Tensor<double>::from_vector({1, 2, 3}), /*requires_grad=*/true);
//   Var<double> y = sum(x * x);   // records two nodes
//   y.backward();                 // x.grad() == {2, 4, 6}
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bindery/autograd/grad_mode.hpp"
#include "bindery/core/autocast.hpp"
#include "bindery/core/tensor.hpp"

namespace bindery {

template <class T, Backend B>
struct Node {
  using TensorType = Tensor<T, B>;
  /// Maps dL/d(output) to one gradient per input (an undefined Tensor where none flows).
  using BackwardFn = std::function<std::vector<TensorType>(const TensorType& dL_dout)>;

  TensorType value;
  TensorType grad;  // undefined until a gradient arrives
  bool requires_grad = false;
  bool retain_grad = false;  // keep the gradient of a non-leaf after backward
  std::vector<std::shared_ptr<Node>> inputs;
  BackwardFn backward;
  const char* op = "leaf";
  Precision autocast = Precision::kFloat32;  // autocast precision at forward time, restored for backward
  bool graph_freed = false;                  // backward ran without retain_graph: inputs and closure released
  /// Called by backward when this leaf's gradient is final for that backward pass (every consumer
  /// has contributed): data parallelism starts communicating a gradient as soon as it is ready.
  std::vector<std::pair<uint64_t, std::function<void()>>> grad_ready_hooks;

  bool is_leaf() const { return backward == nullptr && !graph_freed; }

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  /// Releases a long chain of inputs iteratively: the default recursive destruction of a
  /// 100,000-op graph that was never back-propagated would overflow the stack.
  ~Node() {
    std::vector<std::shared_ptr<Node>> pending = std::move(inputs);
    while (!pending.empty()) {
      std::shared_ptr<Node> next = std::move(pending.back());
      pending.pop_back();
      if (next && next.use_count() == 1) {
        for (auto& input : next->inputs) pending.push_back(std::move(input));
        next->inputs.clear();
        next->backward = nullptr;  // closures may hold Vars too
      }
    }
  }
};

/// A differentiable value: a Tensor plus its place in the autograd graph.
template <class T, Backend B = Cpu>
class Var {
 public:
  using TensorType = Tensor<T, B>;
  using NodeType = Node<T, B>;
  using value_type = T;
  using backend_type = B;

  /// An undefined Var (no node).
  Var() = default;
  /// A leaf holding `value`; gradients accumulate into grad() when requires_grad is true.
  explicit Var(TensorType value, bool requires_grad = false) : node_(std::make_shared<NodeType>()) {
    node_->value = std::move(value);
    node_->requires_grad = requires_grad;
  }

  bool defined() const { return node_ != nullptr; }
  const TensorType& value() const { return node_->value; }
  /// The accumulated gradient (undefined before any backward reached this Var).
  const TensorType& grad() const { return node_->grad; }
  bool has_grad() const { return node_->grad.defined(); }
  const Shape& shape() const { return node_->value.shape(); }
  int64_t size(int64_t axis) const { return node_->value.size(axis); }
  int64_t rank() const { return node_->value.rank(); }
  int64_t numel() const { return node_->value.numel(); }
  T item() const { return node_->value.item(); }
  bool requires_grad() const { return node_ && node_->requires_grad; }
  bool is_leaf() const { return node_->is_leaf(); }
  const char* op_name() const { return node_->op; }

  /// Turns gradient tracking on or off for a leaf (a parameter); freezing a parameter this way
  /// means no op that uses it records a gradient path to it.
  Var& set_requires_grad(bool requires_grad) {
    BINDERY_CHECK(is_leaf(), AutogradError,
                  "set_requires_grad: only leaves can change requires_grad; this Var was made by '",
                  node_->op, "' (use detach())");
    node_->requires_grad = requires_grad;
    return *this;
  }
  /// Keep this non-leaf's gradient after backward (leaves always keep theirs).
  Var& retain_grad() {
    node_->retain_grad = true;
    return *this;
  }
  /// A new leaf sharing this value, cut from the graph.
  Var detach() const { return Var(node_->value, false); }
  /// Forgets the accumulated gradient.
  void zero_grad() { node_->grad = TensorType(); }
  /// Replaces the gradient (used by optimizers' tests and gradient clipping).
  void set_grad(TensorType grad) { node_->grad = std::move(grad); }
  /// Writes new values into the existing storage (in place, shape unchanged): how weights load.
  void assign(const TensorType& value) {
    BINDERY_CHECK(value.shape() == shape(), ShapeError, "assign: value of shape ", value.shape(),
                  " into a Var of shape ", shape());
    node_->value.copy_(value);
  }

  /// Registers `hook`, called during backward as soon as this leaf's gradient is final for that
  /// pass (after every op that used it has added its contribution). Returns an id for removal.
  uint64_t add_grad_ready_hook(std::function<void()> hook) {
    BINDERY_CHECK(defined() && is_leaf(), AutogradError,
                  "add_grad_ready_hook: only leaves (parameters) have a final gradient to announce");
    static std::atomic<uint64_t> next_id{1};
    const uint64_t id = next_id++;
    node_->grad_ready_hooks.emplace_back(id, std::move(hook));
    return id;
  }
  void remove_grad_ready_hook(uint64_t id) {
    if (!node_) return;
    auto& hooks = node_->grad_ready_hooks;
    std::erase_if(hooks, [id](const auto& h) { return h.first == id; });
  }

  /// Reverse-mode differentiation from this scalar (or with an explicit seed of this Var's shape).
  /// Defined in autograd/engine.hpp.
  void backward(bool retain_graph = false) const;
  void backward(const TensorType& dL_dthis, bool retain_graph = false) const;

  const std::shared_ptr<NodeType>& node() const { return node_; }
  explicit Var(std::shared_ptr<NodeType> node) : node_(std::move(node)) {}

 private:
  std::shared_ptr<NodeType> node_;
};

/// Records the result of an op. When grad mode is off or no input requires a gradient, the result
/// is a plain leaf and `backward` (with everything it captured) is dropped at once. An input may be
/// an undefined Var (an absent bias): it keeps its position, and its gradient is ignored.
///
///   return make_result<T, B>(y, "exp", {x}, [y](const Tensor<T, B>& dL_dy) {
///     return std::vector{mul_forward(dL_dy, y)};
///   });
template <class T, class B, class BackwardFn>
Var<T, B> make_result(Tensor<T, B> value, const char* op, std::span<const Var<T, B>> inputs,
                      BackwardFn&& backward) {
  bool any = false;
  if (GradMode::is_enabled()) {
    for (const auto& input : inputs) any = any || input.requires_grad();
  }
  if (!any) return Var<T, B>(std::move(value), false);
  auto node = std::make_shared<Node<T, B>>();
  node->value = std::move(value);
  node->requires_grad = true;
  node->op = op;
  node->autocast = autocast_precision();
  node->inputs.reserve(inputs.size());
  for (const auto& input : inputs) node->inputs.push_back(input.node());  // null for undefined
  node->backward = std::forward<BackwardFn>(backward);
  return Var<T, B>(std::move(node));
}
template <class T, class B, class BackwardFn>
Var<T, B> make_result(Tensor<T, B> value, const char* op, std::initializer_list<Var<T, B>> inputs,
                      BackwardFn&& backward) {
  return make_result<T, B>(std::move(value), op, std::span<const Var<T, B>>(inputs.begin(), inputs.size()),
                           std::forward<BackwardFn>(backward));
}
/// For ops with a run-time number of inputs (concat, stack).
template <class T, class B, class BackwardFn>
Var<T, B> make_result(Tensor<T, B> value, const char* op, const std::vector<Var<T, B>>& inputs,
                      BackwardFn&& backward) {
  return make_result<T, B>(std::move(value), op, std::span<const Var<T, B>>(inputs.data(), inputs.size()),
                           std::forward<BackwardFn>(backward));
}

/// True when a gradient should be computed for `v` in a backward closure being recorded now.
template <class T, class B>
bool needs_grad(const Var<T, B>& v) {
  return GradMode::is_enabled() && v.requires_grad();
}

}  // namespace bindery
