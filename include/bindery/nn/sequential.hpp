// bindery/nn/sequential.hpp — containers: Sequential<Ms...> (a typed chain) and ModuleList<M>.
//
// Both name their children "0", "1", ... exactly as torch.nn.Sequential / nn.ModuleList, so the
// state-dict keys match (`pre_transformer_layer.0.weight`, `blocks.11.mlp.fc2.bias`).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "bindery/nn/module.hpp"

namespace bindery::nn {

/// A fixed chain of modules whose types are known at compile time: forward(x) is
/// m_{n-1}.forward(...m_1.forward(m_0.forward(x))). Each output type feeds the next input.
///
///   auto seq = std::make_shared<Sequential<LayerNorm<float>, Linear<float>>>(
///       std::make_shared<LayerNorm<float>>(8), std::make_shared<Linear<float>>(8, 4));
///   // keys: 0.weight, 0.bias, 1.weight, 1.bias
template <class First, class... Rest>
class Sequential : public Module<typename First::value_type, typename First::backend_type> {
 public:
  using T = typename First::value_type;
  using B = typename First::backend_type;
  static_assert((std::is_base_of_v<Module<T, B>, First> && ... && std::is_base_of_v<Module<T, B>, Rest>),
                "Sequential: every child must derive from Module<T, B> with the same T and B");

  explicit Sequential(std::shared_ptr<First> first, std::shared_ptr<Rest>... rest)
      : items_(std::move(first), std::move(rest)...) {
    register_all(std::index_sequence_for<First, Rest...>{});
  }

  static constexpr size_t size() { return 1 + sizeof...(Rest); }

  /// The I-th child.
  template <size_t I>
  auto& get() {
    return *std::get<I>(items_);
  }
  template <size_t I>
  const auto& get() const {
    return *std::get<I>(items_);
  }

  /// Feeds x through every child in order.
  template <class Input>
  auto forward(const Input& x) {
    return forward_from<0>(x);
  }

 private:
  template <size_t... I>
  void register_all(std::index_sequence<I...>) {
    (this->register_module(std::to_string(I), std::get<I>(items_)), ...);
  }
  template <size_t I, class Input>
  auto forward_from(const Input& x) {
    if constexpr (I == size()) {
      return x;
    } else {
      return forward_from<I + 1>(std::get<I>(items_)->forward(x));
    }
  }

  std::tuple<std::shared_ptr<First>, std::shared_ptr<Rest>...> items_;
};

template <class... Ms>
Sequential(std::shared_ptr<Ms>...) -> Sequential<Ms...>;

/// A growable list of modules of one type, named "0", "1", ... (torch.nn.ModuleList; ImageBind's
/// `blocks` is an nn.Sequential of blocks called one by one, which has the same keys).
template <class M>
class ModuleList : public Module<typename M::value_type, typename M::backend_type> {
 public:
  using T = typename M::value_type;
  using B = typename M::backend_type;
  static_assert(std::is_base_of_v<Module<T, B>, M>, "ModuleList: M must derive from Module<T, B>");

  ModuleList() = default;

  /// Appends `module` under the name std::to_string(size()) and returns it.
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    this->register_module(std::to_string(items_.size()), module);
    items_.push_back(module);
    return items_.back();
  }

  int64_t size() const { return static_cast<int64_t>(items_.size()); }
  bool empty() const { return items_.empty(); }
  /// The i-th module; throws IndexError when out of range (negative counts from the end).
  M& operator[](int64_t i) const {
    const int64_t j = i < 0 ? i + size() : i;
    BINDERY_CHECK(j >= 0 && j < size(), IndexError, "ModuleList: index ", i, " out of range for ", size(),
                  " modules");
    return *items_[static_cast<size_t>(j)];
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::shared_ptr<M>> items_;
};

}  // namespace bindery::nn
