// bindery/ops/reduce.hpp — sum, mean and max over axes, and sum_to_shape (the adjoint of broadcast).
//
// Forward: every output element walks its reduction set through two Indexers (kept axes and reduced
// axes), so any strided view reduces without a copy. Sums accumulate in double. A sum with few
// outputs over many elements each (a full sum, a gradient norm) is split into parts summed in
// parallel and then added in a fixed order: deterministic, and parallel on every backend.
// Backward: sum spreads dL/dy back over the reduced axes (a broadcast); mean divides it by the count;
// max sends it to the arg-max element only (the first one on ties, as torch.max(dim)).
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

#include "bindery/autograd/var.hpp"
#include "bindery/ops/elementwise.hpp"

namespace bindery::ops {

namespace detail {

/// Splits x's axes into kept and reduced, and builds the Indexers the kernels walk with.
struct ReductionPlan {
  Shape out_shape;      // with keepdim
  Shape kept_shape;     // kept axes only
  Shape reduced_shape;  // reduced axes only
  int64_t reduce_count = 1;
  std::vector<bool> is_reduced;
};

inline ReductionPlan plan_reduction(const Shape& shape, const std::vector<int64_t>& axes) {
  ReductionPlan plan;
  plan.is_reduced.assign(static_cast<size_t>(shape.rank()), axes.empty());
  for (int64_t axis : axes) {
    const int64_t a = shape.normalize_axis(axis);
    BINDERY_CHECK(!plan.is_reduced[static_cast<size_t>(a)], ShapeError, "reduction axis ", axis,
                  " repeated for shape ", shape);
    plan.is_reduced[static_cast<size_t>(a)] = true;
  }
  std::vector<int64_t> out, kept, reduced;
  for (int64_t d = 0; d < shape.rank(); ++d) {
    const bool r = plan.is_reduced[static_cast<size_t>(d)];
    out.push_back(r ? 1 : shape[d]);
    (r ? reduced : kept).push_back(shape[d]);
    if (r) plan.reduce_count *= shape[d];
  }
  plan.out_shape = Shape(out);
  plan.kept_shape = Shape(kept);
  plan.reduced_shape = Shape(reduced);
  return plan;
}

/// Indexers over the kept axes and the reduced axes of a tensor with `strides`.
inline void reduction_indexers(const ReductionPlan& plan, const Strides& strides, Indexer& kept,
                               Indexer& reduced) {
  Strides kept_strides, reduced_strides;
  for (size_t d = 0; d < strides.size(); ++d) {
    (plan.is_reduced[d] ? reduced_strides : kept_strides).push_back(strides[d]);
  }
  const Strides* ks[1] = {&kept_strides};
  const Strides* rs[1] = {&reduced_strides};
  Indexer k[1], r[1];
  make_indexers(plan.kept_shape, ks, k);
  make_indexers(plan.reduced_shape, rs, r);
  kept = k[0];
  reduced = r[0];
}

template <class T>
struct SumFunctor {
  T* out;
  const T* in;
  Indexer kept, reduced;
  int64_t count;
  T scale;  // 1 for sum, 1/count for mean
  BINDERY_HOST_DEVICE void operator()(int64_t o) const {
    const T* base = in + kept(o);
    double acc = 0.0;
    if (reduced.rank <= 1) {  // one (merged) reduced axis: a plain strided loop
      const int64_t stride = reduced.rank == 1 ? reduced.strides[0] : 0;
      for (int64_t r = 0; r < count; ++r) acc += static_cast<double>(base[r * stride]);
    } else {
      for (int64_t r = 0; r < count; ++r) acc += static_cast<double>(base[reduced(r)]);
    }
    out[o] = static_cast<T>(acc) * scale;
  }
};

/// Split reductions (few outputs, many elements each): partial[o·parts + p] = the double sum of part
/// p of output o's reduction set. Parts are contiguous ranges on host backends (each thread streams
/// its own range) and interleaved (r = p, p + parts, ...) on device backends, where neighbouring
/// threads then read neighbouring elements.
template <class T>
struct PartialSumFunctor {
  double* partial;
  const T* in;
  Indexer kept, reduced;
  int64_t count, parts;
  bool interleaved;
  BINDERY_HOST_DEVICE void operator()(int64_t item) const {
    const int64_t o = item / parts, p = item - o * parts;
    const T* base = in + kept(o);
    const int64_t chunk = (count + parts - 1) / parts;
    const int64_t begin = interleaved ? p : p * chunk;
    const int64_t end = interleaved ? count : (begin + chunk < count ? begin + chunk : count);
    const int64_t step = interleaved ? parts : 1;
    double acc = 0.0;
    if (reduced.rank <= 1) {
      const int64_t stride = reduced.rank == 1 ? reduced.strides[0] : 0;
      for (int64_t r = begin; r < end; r += step) acc += static_cast<double>(base[r * stride]);
    } else {
      for (int64_t r = begin; r < end; r += step) acc += static_cast<double>(base[reduced(r)]);
    }
    partial[item] = acc;
  }
};

/// out[o] = (Σ_p partial[o·parts + p]) · scale, the parts added in order (deterministic).
template <class T>
struct FinishSumFunctor {
  T* out;
  const double* partial;
  int64_t parts;
  T scale;
  BINDERY_HOST_DEVICE void operator()(int64_t o) const {
    double acc = 0.0;
    for (int64_t p = 0; p < parts; ++p) acc += partial[o * parts + p];
    out[o] = static_cast<T>(acc) * scale;
  }
};

/// Parts per output for a split reduction, or 1 when one loop per output is parallel enough.
template <class B>
int64_t reduction_parts(int64_t outputs, int64_t count) {
  constexpr int64_t kMinPerPart = 4096;  // elements a part sums at least
  if (outputs >= 256 || count < 2 * kMinPerPart) return 1;
  const int64_t wanted = B::kHostAccessible ? 64 : 4096;  // threads to keep busy, over all outputs
  const int64_t parts = std::min((wanted + outputs - 1) / outputs, count / kMinPerPart);
  return std::max<int64_t>(parts, 1);
}

template <class T>
struct MaxFunctor {
  T* out;
  int64_t* arg;  // reduced linear index of the first maximum
  const T* in;
  Indexer kept, reduced;
  int64_t count;
  BINDERY_HOST_DEVICE void operator()(int64_t o) const {
    const T* base = in + kept(o);
    T best = base[reduced(0)];
    int64_t best_r = 0;
    for (int64_t r = 1; r < count; ++r) {
      const T v = base[reduced(r)];
      if (v > best || (v != v && best == best)) {  // NaN propagates, as in PyTorch
        best = v;
        best_r = r;
      }
    }
    out[o] = best;
    arg[o] = best_r;
  }
};

template <class T>
struct ScatterArgFunctor {  // dx[kept(o) + reduced(arg[o])] = g[o], on a zeroed contiguous dx
  T* dx;
  const T* g;
  const int64_t* arg;
  Indexer kept, reduced;
  BINDERY_HOST_DEVICE void operator()(int64_t o) const { dx[kept(o) + reduced(arg[o])] = g[o]; }
};

inline Shape drop_reduced(const ReductionPlan& plan, const Shape& shape) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < shape.rank(); ++d) {
    if (!plan.is_reduced[static_cast<size_t>(d)]) dims.push_back(shape[d]);
  }
  return Shape(dims);
}

}  // namespace detail

// ---- tensor level ------------------------------------------------------------------------------

/// Sum over `axes` (all axes when empty). x: any shape -> x's shape with those axes removed
/// (or kept with extent 1 when keepdim).
template <class T, class B>
Tensor<T, B> sum_forward(const Tensor<T, B>& x, const std::vector<int64_t>& axes = {}, bool keepdim = false,
                         T scale = T(1)) {
  const detail::ReductionPlan plan = detail::plan_reduction(x.shape(), axes);
  Tensor<T, B> out = Tensor<T, B>::empty(plan.out_shape);
  Indexer kept, reduced;
  detail::reduction_indexers(plan, x.strides(), kept, reduced);
  const int64_t parts = detail::reduction_parts<B>(out.numel(), plan.reduce_count);
  if (parts > 1) {  // few outputs over many elements: split each sum, then add the parts in order
    Tensor<double, B> partial = Tensor<double, B>::empty(Shape{out.numel() * parts});
    B::for_each(out.numel() * parts,
                detail::PartialSumFunctor<T>{partial.data(), x.data(), kept, reduced, plan.reduce_count,
                                             parts, !B::kHostAccessible},
                1);
    B::for_each(out.numel(), detail::FinishSumFunctor<T>{out.data(), partial.data(), parts, scale}, 1);
  } else {
    B::for_each(out.numel(),
                detail::SumFunctor<T>{out.data(), x.data(), kept, reduced, plan.reduce_count, scale},
                std::max<int64_t>(1, B::kDefaultGrain / std::max<int64_t>(plan.reduce_count, 1)));
  }
  return keepdim ? out : out.reshape(detail::drop_reduced(plan, plan.out_shape));
}

/// Sums a broadcast gradient back to `shape` (the adjoint of expand): the backward of every
/// broadcasting binary op.
template <class T, class B>
Tensor<T, B> sum_to_shape(const Tensor<T, B>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.rank() - shape.rank();
  BINDERY_CHECK(lead >= 0, ShapeError, "sum_to_shape: cannot reduce ", g.shape(), " to ", shape);
  std::vector<int64_t> axes;
  for (int64_t d = 0; d < g.rank(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && g.shape()[d] != 1)) axes.push_back(d);
  }
  return sum_forward(g, axes, true).reshape(shape);
}

// ---- differentiable ----------------------------------------------------------------------------

/// Sum over `axes` (all when empty). Backward: dL/dx = broadcast of dL/dy over the reduced axes.
template <class T, class B>
Var<T, B> sum(const Var<T, B>& x, const std::vector<int64_t>& axes = {}, bool keepdim = false) {
  const Shape x_shape = x.shape();
  const detail::ReductionPlan plan = detail::plan_reduction(x_shape, axes);
  return make_result<T, B>(sum_forward(x.value(), axes, keepdim), "sum", {x},
                           [x_shape, keep_shape = plan.out_shape](const Tensor<T, B>& dL_dy) {
                             return std::vector{dL_dy.reshape(keep_shape).expand(x_shape).contiguous()};
                           });
}

/// Mean over `axes` (all when empty). Backward: dL/dx = broadcast of dL/dy / count.
template <class T, class B>
Var<T, B> mean(const Var<T, B>& x, const std::vector<int64_t>& axes = {}, bool keepdim = false) {
  const Shape x_shape = x.shape();
  const detail::ReductionPlan plan = detail::plan_reduction(x_shape, axes);
  BINDERY_CHECK(plan.reduce_count > 0, ShapeError, "mean: reducing an empty set of shape ", x_shape);
  const T scale = T(1) / static_cast<T>(plan.reduce_count);
  return make_result<T, B>(
      sum_forward(x.value(), axes, keepdim, scale), "mean", {x},
      [x_shape, keep_shape = plan.out_shape, scale](const Tensor<T, B>& dL_dy) {
        return std::vector{map(dL_dy.reshape(keep_shape).expand(x_shape), functors::MulScalar<T>{scale})};
      });
}

/// Maximum over `axes` (all when empty). Backward: dL/dy goes to the first arg-max element.
template <class T, class B>
Var<T, B> max(const Var<T, B>& x, const std::vector<int64_t>& axes = {}, bool keepdim = false) {
  const Tensor<T, B>& xv = x.value();
  const detail::ReductionPlan plan = detail::plan_reduction(xv.shape(), axes);
  BINDERY_CHECK(plan.reduce_count > 0, ShapeError, "max: reducing an empty set of shape ", xv.shape());
  Tensor<T, B> out = Tensor<T, B>::empty(plan.out_shape);
  Tensor<int64_t, B> arg = Tensor<int64_t, B>::empty(plan.out_shape);
  Indexer kept, reduced;
  detail::reduction_indexers(plan, xv.strides(), kept, reduced);
  B::for_each(out.numel(),
              detail::MaxFunctor<T>{out.data(), arg.data(), xv.data(), kept, reduced, plan.reduce_count}, 1);
  Tensor<T, B> value = keepdim ? out : out.reshape(detail::drop_reduced(plan, plan.out_shape));
  return make_result<T, B>(value, "max", {x}, [plan, arg, x_shape = xv.shape()](const Tensor<T, B>& dL_dy) {
    Tensor<T, B> dL_dx = Tensor<T, B>::zeros(x_shape);
    Indexer k, r;
    detail::reduction_indexers(plan, dL_dx.strides(), k, r);
    const Tensor<T, B> g = dL_dy.contiguous();
    B::for_each(g.numel(), detail::ScatterArgFunctor<T>{dL_dx.data(), g.data(), arg.data(), k, r});
    return std::vector{dL_dx};
  });
}

}  // namespace bindery::ops
