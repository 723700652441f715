// bindery/autograd/engine.hpp — backward(): topological order, reverse walk, accumulation.
#pragma once

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bindery/autograd/var.hpp"

namespace bindery {

namespace detail {

template <class T>
struct AccumulateFlatFunctor {  // grad[i] += delta[i * stride]
  T* grad;
  const T* delta;
  int64_t stride;
  BINDERY_HOST_DEVICE void operator()(int64_t i) const { grad[i] += delta[i * stride]; }
};

template <class T>
struct AccumulateRowsFunctor {  // row r of grad (contiguous) += row r of delta (a strided view)
  T* grad;
  const T* delta;
  RowIndexer delta_rows;
  BINDERY_HOST_DEVICE void operator()(int64_t row) const {
    T* g = grad + row * delta_rows.inner;
    const T* d = delta + delta_rows.outer(row);
    const int64_t stride = delta_rows.inner_stride;
    if (stride == 1) {
      for (int64_t j = 0; j < delta_rows.inner; ++j) g[j] += d[j];
    } else {
      for (int64_t j = 0; j < delta_rows.inner; ++j) g[j] += d[j * stride];
    }
  }
};

/// Adds `delta` into node.grad. The stored gradient is always a contiguous tensor owned by the node
/// alone, so later in-place updates (accumulation, clipping) never write into someone else's data.
template <class T, class B>
void accumulate_grad(Node<T, B>& node, const Tensor<T, B>& delta) {
  BINDERY_CHECK(delta.shape() == node.value.shape(), AutogradError, "backward of '", node.op,
                "' consumer produced a gradient of shape ", delta.shape(), " for a value of shape ",
                node.value.shape());
  if (!node.grad.defined()) {
    const bool owned = delta.is_contiguous() && delta.storage_use_count() == 1 && delta.offset() == 0 &&
                       delta.storage_capacity() == std::max<int64_t>(delta.numel(), 1);
    node.grad = owned ? delta : delta.clone();
    return;
  }
  const Strides* strides[1] = {&delta.strides()};
  Indexer index[1];
  make_indexers(delta.shape(), strides, index);
  if (index[0].rank <= 1) {  // contiguous or one merged axis: element-parallel
    const int64_t stride = index[0].rank == 1 ? index[0].strides[0] : 0;
    B::for_each(delta.numel(), AccumulateFlatFunctor<T>{node.grad.data(), delta.data(), stride});
    return;
  }
  const RowIndexer rows = split_rows(index[0]);
  const int64_t inner = std::max<int64_t>(rows.inner, 1);
  B::for_each(delta.numel() / inner, AccumulateRowsFunctor<T>{node.grad.data(), delta.data(), rows},
              std::max<int64_t>(1, B::kDefaultGrain / inner));
}

/// Nodes reachable from `root` through nodes that require grad, inputs before their consumers.
/// Owning pointers: releasing a node's inputs during the walk must not destroy nodes still to visit.
template <class T, class B>
std::vector<std::shared_ptr<Node<T, B>>> topological_order(const std::shared_ptr<Node<T, B>>& root) {
  std::vector<std::shared_ptr<Node<T, B>>> order;
  std::unordered_set<Node<T, B>*> visited;
  std::vector<std::pair<std::shared_ptr<Node<T, B>>, size_t>> stack{{root, 0}};  // iterative DFS
  visited.insert(root.get());
  while (!stack.empty()) {
    Node<T, B>* node = stack.back().first.get();
    const size_t next_input = stack.back().second;
    if (next_input < node->inputs.size()) {
      ++stack.back().second;  // before push_back, which may reallocate the stack
      const std::shared_ptr<Node<T, B>>& input = node->inputs[next_input];
      if (input && input->requires_grad && visited.insert(input.get()).second) stack.push_back({input, 0});
    } else {
      order.push_back(std::move(stack.back().first));
      stack.pop_back();
    }
  }
  return order;
}

template <class T, class B>
void run_backward(const Var<T, B>& root, const Tensor<T, B>& seed, bool retain_graph) {
  BINDERY_CHECK(root.defined(), AutogradError, "backward: the Var is undefined");
  BINDERY_CHECK(root.requires_grad(), AutogradError,
                "backward: this Var does not require grad (no input of its graph has requires_grad, "
                "or it was computed under NoGrad)");
  const std::shared_ptr<Node<T, B>>& root_node = root.node();
  BINDERY_CHECK(!root_node->graph_freed, AutogradError, "backward: the graph of '", root_node->op,
                "' was already freed by a previous backward; pass retain_graph = true to the first call");
  NoGrad no_grad;  // gradient formulas run on plain tensors, never recorded
  const std::vector<std::shared_ptr<Node<T, B>>> order = topological_order(root_node);
  accumulate_grad(*root_node, seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node<T, B>* node = it->get();
    if (node->graph_freed) {
      BINDERY_CHECK(false, AutogradError, "backward: the graph through '", node->op,
                    "' was freed by a previous backward; pass retain_graph = true to the first call");
    }
    if (!node->backward) {  // a leaf: its gradient stays in node->grad, final from here on
      for (const auto& hook : node->grad_ready_hooks) hook.second();
      continue;
    }
    if (node->grad.defined()) {
      const Autocast autocast(node->autocast);  // the backward GEMMs run at the forward's precision
      std::vector<Tensor<T, B>> input_grads = node->backward(node->grad);
      BINDERY_CHECK(input_grads.size() == node->inputs.size(), AutogradError, "backward of '", node->op,
                    "' returned ", input_grads.size(), " gradients for ", node->inputs.size(), " inputs");
      for (size_t i = 0; i < input_grads.size(); ++i) {
        Node<T, B>* input = node->inputs[i].get();
        if (input && input->requires_grad && input_grads[i].defined())
          accumulate_grad(*input, input_grads[i]);
      }
      if (!node->retain_grad) node->grad = Tensor<T, B>();  // a non-leaf's gradient is transient
    }
    if (!retain_graph) {
      node->backward = nullptr;
      node->inputs.clear();
      node->graph_freed = true;
    }
  }
}

}  // namespace detail

template <class T, Backend B>
void Var<T, B>::backward(bool retain_graph) const {
  BINDERY_CHECK(defined() && numel() == 1, AutogradError, "backward(): the Var has shape ",
                defined() ? shape().to_string() : std::string("undefined"),
                "; only a one-element Var can seed backward implicitly — pass dL/dthis explicitly");
  detail::run_backward(*this, TensorType::ones(shape()), retain_graph);
}

template <class T, Backend B>
void Var<T, B>::backward(const TensorType& dL_dthis, bool retain_graph) const {
  BINDERY_CHECK(defined() && dL_dthis.shape() == shape(), ShapeError, "backward: seed of shape ",
                dL_dthis.shape(), " for a Var of shape ", defined() ? shape().to_string() : "undefined");
  detail::run_backward(*this, dL_dthis, retain_graph);
}

}  // namespace bindery
