// tests/core/test_backend_concept.cpp — the Backend concept, and a new backend that starts small.
//
// `Toy` is the smallest backend bindery accepts: host memory from operator new, a serial for_each
// and a naive triple-loop GEMM, with no op kernel specialized. A Linear + GELU + softmax model (with
// layer norm, L2 normalization, attention and cross-entropies), and conv2d, index_select,
// gather_rows and embedding, run forward and backward on it through the portable kernels and
// composites, and match the Cpu backend.
#include <algorithm>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace bindery;

struct Toy {
  static constexpr const char* kName = "toy";
  static constexpr bool kHostAccessible = true;
  static constexpr int64_t kDefaultGrain = 1024;

  template <class T>
  static T* allocate(int64_t n) {
    return static_cast<T*>(::operator new(static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(T)));
  }
  template <class T>
  static void deallocate(T* p) noexcept {
    ::operator delete(static_cast<void*>(const_cast<std::remove_cv_t<T>*>(p)));
  }
  template <class T>
  static void copy_to_host(T* host, const T* src, int64_t n) {
    std::copy_n(src, n, host);
  }
  template <class T>
  static void copy_from_host(T* dst, const T* host, int64_t n) {
    std::copy_n(host, n, dst);
  }
  template <class T>
  static void copy(T* dst, const T* src, int64_t n) {
    std::copy_n(src, n, dst);
  }
  static void synchronize() {}
  template <class F>
  static void for_each(int64_t n, const F& f, int64_t = kDefaultGrain) {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
  /// Row-major C = alpha op(A) op(B) + beta C (C is not read when beta == 0).
  template <class T>
  static void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                   int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
    static_assert(std::is_floating_point_v<T>, "the toy backend multiplies float and double only");
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        T acc = T(0);
        for (int64_t p = 0; p < k; ++p) {
          acc += (trans_a ? a[p * lda + i] : a[i * lda + p]) * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
        }
        c[i * ldc + j] = alpha * acc + (beta == T(0) ? T(0) : beta * c[i * ldc + j]);
      }
    }
  }
  template <class T>
  static void gemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                           int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta,
                           T* c, int64_t ldc, int64_t stride_c, int64_t batch) {
    for (int64_t i = 0; i < batch; ++i) {
      gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
           c + i * stride_c, ldc);
    }
  }
};

/// The memory half of the concept, shared by the broken toys below.
struct MemoryOnly {
  static constexpr const char* kName = "broken";
  static constexpr bool kHostAccessible = true;
  static constexpr int64_t kDefaultGrain = 1024;
  template <class T>
  static T* allocate(int64_t n) {
    return Toy::allocate<T>(n);
  }
  template <class T>
  static void deallocate(T* p) noexcept {
    Toy::deallocate(p);
  }
  template <class T>
  static void copy_to_host(T*, const T*, int64_t) {}
  template <class T>
  static void copy_from_host(T*, const T*, int64_t) {}
  template <class T>
  static void copy(T*, const T*, int64_t) {}
  static void synchronize() {}
  template <class T>
  static void gemm(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, int64_t, T, T*,
                   int64_t) {}
};

/// Toy without for_each: not a backend.
struct NoForEach : MemoryOnly {
  template <class T>
  static void gemm_batched(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t, const T*,
                           int64_t, int64_t, T, T*, int64_t, int64_t, int64_t) {}
};

/// Toy without gemm_batched: has the memory half of the concept only.
struct NoGemmBatched : MemoryOnly {
  template <class F>
  static void for_each(int64_t n, const F& f, int64_t = kDefaultGrain) {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
};

template <template <class, class> class Template, class T, class B>
concept Instantiable = requires {
  typename Template<T, B>;
};

static_assert(Backend<Cpu>);
static_assert(Backend<Toy>);
static_assert(!Backend<NoForEach>, "a type without for_each is not a Backend");
static_assert(BackendMemory<NoForEach> && !BackendCompute<NoForEach>);
static_assert(BackendMemory<NoGemmBatched> && !Backend<NoGemmBatched>);
static_assert(!Backend<int> && !Backend<std::vector<float>>);
// The constraint sits on the templates themselves: naming Tensor<float, NoForEach> is ill-formed.
static_assert(Instantiable<Tensor, float, Toy> && !Instantiable<Tensor, float, NoForEach>);
static_assert(Instantiable<Var, float, Toy> && !Instantiable<Var, float, NoGemmBatched>);
static_assert(Instantiable<nn::Module, float, Toy> && !Instantiable<nn::Module, float, NoForEach>);
// Toy specializes no kernel: the ops take the portable kernels and the attention composite.
static_assert(ops::kHasAttentionKernel<Cpu> && !ops::kHasAttentionKernel<Toy>);

/// The same values on backend B.
template <class B>
Tensor<double, B> on(const Tensor<double, Cpu>& t) {
  return Tensor<double, B>::from_vector(t.to_vector(), t.shape());
}

template <class B>
std::vector<double> grad_of(const Var<double, B>& v) {
  return v.grad().to_vector();
}

/// Runs a small model on backend B from the Cpu tensors `x`, `labels` and returns the loss and the
/// gradients of every input and parameter, in a fixed order.
template <class B>
std::vector<std::vector<double>> run_model(const Tensor<double, Cpu>& x_cpu,
                                           const Tensor<int64_t, Cpu>& labels) {
  nn::Linear<double, B> fc1(6, 8, true, /*seed=*/7);
  nn::Linear<double, B> fc2(8, 5, true, /*seed=*/8);
  nn::LayerNorm<double, B> norm(8);
  Var<double, B> x(on<B>(x_cpu), true);  // (4, 6)
  const Tensor<int64_t, B> y = Tensor<int64_t, B>::from_vector(labels.to_vector(), labels.shape());

  Var<double, B> h = ops::gelu(fc1.forward(x));  // (4, 8)
  h = norm.forward(h);
  // one attention head over the 4 rows, as a (1, 4, 8) sequence
  Var<double, B> seq = ops::reshape(h, {1, 4, 8});
  Var<double, B> attended = ops::reshape(ops::scaled_dot_product_attention(seq, seq, seq), {4, 8});
  Var<double, B> logits = fc2.forward(attended + h);  // (4, 5)
  Var<double, B> p = ops::softmax(logits, -1);        // over classes
  Var<double, B> q = ops::softmax(logits, 0);         // over the batch (column slabs)
  Var<double, B> z = ops::l2_normalize(logits, 0);    // column-wise norms
  Var<double, B> ce = ops::cross_entropy(logits, y);  // ()
  Var<double, B> sce = ops::symmetric_cross_entropy(ops::matmul(z, z, true, false));  // (5, 5) -> ()
  Var<double, B> loss = ops::sum(p * q) + ce + sce;
  loss.backward();

  std::vector<std::vector<double>> out{loss.value().to_vector(), grad_of(x)};
  for (auto& [name, param] : fc1.named_parameters()) out.push_back(grad_of(param));
  for (auto& [name, param] : norm.named_parameters()) out.push_back(grad_of(param));
  for (auto& [name, param] : fc2.named_parameters()) out.push_back(grad_of(param));
  return out;
}

TEST_CASE("a backend with only memory, for_each and gemm runs a model like Cpu", "[core][backend]") {
  Philox rng(11);
  const Tensor<double, Cpu> x = Tensor<double, Cpu>::normal(Shape{4, 6}, rng);
  const Tensor<int64_t, Cpu> labels = Tensor<int64_t, Cpu>::from_vector({0, 3, 4, 1});
  const auto toy = run_model<Toy>(x, labels);
  const auto cpu = run_model<Cpu>(x, labels);
  REQUIRE(toy.size() == cpu.size());
  REQUIRE(toy.size() == 2 + 2 + 2 + 2);  // loss, dx, fc1 (w, b), norm (w, b), fc2 (w, b)
  for (size_t i = 0; i < toy.size(); ++i) {
    INFO("output " << i);
    REQUIRE(toy[i].size() == cpu[i].size());
    REQUIRE(!toy[i].empty());
    REQUIRE(bindery::testing::max_abs_diff(toy[i], cpu[i]) <= 1e-10);
  }
}

TEST_CASE("the portable kernels match the Cpu kernels on every traversal", "[core][backend]") {
  Philox rng(5);
  // (2, 3, 70): the last axis is rows; axis 1 has inner = 70 > one 64-column slab
  const Tensor<double, Cpu> x = Tensor<double, Cpu>::normal(Shape{2, 3, 70}, rng);
  for (int64_t axis : {0, 1, 2}) {
    INFO("axis " << axis);
    REQUIRE(bindery::testing::max_abs_diff(ops::softmax_forward(on<Toy>(x), axis).to_vector(),
                                           ops::softmax_forward(x, axis).to_vector()) <= 1e-14);
    REQUIRE(bindery::testing::max_abs_diff(ops::log_softmax_forward(on<Toy>(x), axis).to_vector(),
                                           ops::log_softmax_forward(x, axis).to_vector()) <= 1e-13);
    REQUIRE(bindery::testing::max_abs_diff(ops::l2_normalize_forward(on<Toy>(x), axis).to_vector(),
                                           ops::l2_normalize_forward(x, axis).to_vector()) <= 1e-14);
  }
  const Tensor<int64_t, Cpu> index = Tensor<int64_t, Cpu>::from_vector({2, 0, 2});
  const Tensor<int64_t, Toy> index_toy = Tensor<int64_t, Toy>::from_vector({2, 0, 2});
  REQUIRE(ops::index_select_forward(on<Toy>(x), 1, index_toy).to_vector() ==
          ops::index_select_forward(x, 1, index).to_vector());
}

/// Gradients of x, w and the embedding table through conv2d (overlapping windows, padding), index
/// select with repeated indices, gather_rows and embedding, on backend B.
template <class B>
std::vector<std::vector<double>> run_gather_and_conv(const Tensor<double, Cpu>& x_cpu,
                                                     const Tensor<double, Cpu>& w_cpu) {
  Var<double, B> x(on<B>(x_cpu), true);                                    // (2, 2, 5, 6)
  Var<double, B> w(on<B>(w_cpu), true);                                    // (3, 2, 3, 3)
  Var<double, B> y = ops::conv2d(x, w, Var<double, B>(), {2, 2}, {1, 1});  // (2, 3, 3, 3)
  const Tensor<int64_t, B> index = Tensor<int64_t, B>::from_vector({2, 0, 2, 2});
  Var<double, B> picked = ops::index_select(y, 1, index);  // (2, 4, 3, 3)
  Var<double, B> rows = ops::reshape(picked, {2, 12, 3});
  const Tensor<int64_t, B> which = Tensor<int64_t, B>::from_vector({11, 4});
  Var<double, B> pooled = ops::gather_rows(rows, which);  // (2, 3)
  Var<double, B> table(on<B>(w_cpu.reshape({6, 9})), true);
  const Tensor<int64_t, B> ids = Tensor<int64_t, B>::from_vector({5, 1, 5}, Shape{3});
  Var<double, B> embedded = ops::embedding(ids, table);  // (3, 9)
  Var<double, B> loss = ops::sum(picked * picked) + ops::sum(pooled) + ops::sum(embedded * embedded);
  loss.backward();
  return {y.value().to_vector(), loss.value().to_vector(), grad_of(x), grad_of(w), grad_of(table)};
}

TEST_CASE("the portable gather, scatter and im2col kernels match Cpu forward and backward",
          "[core][backend]") {
  Philox rng(3);
  const Tensor<double, Cpu> x = Tensor<double, Cpu>::normal(Shape{2, 2, 5, 6}, rng);
  const Tensor<double, Cpu> w = Tensor<double, Cpu>::normal(Shape{3, 2, 3, 3}, rng);
  const auto toy = run_gather_and_conv<Toy>(x, w);
  const auto cpu = run_gather_and_conv<Cpu>(x, w);
  REQUIRE(toy.size() == cpu.size());
  for (size_t i = 0; i < toy.size(); ++i) {
    INFO("output " << i);
    REQUIRE(toy[i].size() == cpu[i].size());
    REQUIRE(bindery::testing::max_abs_diff(toy[i], cpu[i]) <= 1e-10);
  }
}

}  // namespace
