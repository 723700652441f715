// tests/core/test_interop.cpp — zero-copy views to and from users' Eigen and xtensor arrays.
//
// Each test goes user array -> bindery view -> op -> user array and checks the pointers: a view
// shares the user's memory (same data pointer), and the op's result lands in the user's array.
#include <Eigen/Core>

#include <bindery/interop/eigen.hpp>

#if defined(BINDERY_TEST_XTENSOR)
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include <bindery/interop/xtensor.hpp>
#endif

#include "test_util.hpp"

namespace {

using namespace bindery;
using bindery::testing::max_abs_diff;

/// Whether invoking f throws E whose message contains every one of `parts`.
template <class E, class F>
bool throws_naming(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const E& e) {
    const std::string what = e.what();
    INFO(what);
    for (const std::string& part : parts) {
      if (what.find(part) == std::string::npos) return false;
    }
    return true;
  }
  return false;
}

TEST_CASE("interop: Eigen matrices view as tensors in place, either storage order", "[core][interop]") {
  Eigen::Matrix<float, 2, 3, Eigen::RowMajor> row_major;
  row_major << 1, 2, 3, 4, 5, 6;
  Eigen::MatrixXf col_major(2, 3);
  col_major << 1, 2, 3, 4, 5, 6;

  const Tensor<float> r = interop::from_eigen(row_major);
  CHECK(r.data() == row_major.data());
  CHECK(r.shape() == Shape{2, 3});
  CHECK(r.strides() == Strides{3, 1});
  CHECK(r.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});

  const Tensor<float> c = interop::from_eigen(col_major);  // transposed strides, no copy
  CHECK(c.data() == col_major.data());
  CHECK(c.strides() == Strides{1, 2});
  CHECK(c.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});

  // a block of a column-major matrix and a strided Map keep their parent's strides
  Eigen::MatrixXf big = Eigen::MatrixXf::Zero(5, 4);
  big.block(1, 1, 2, 3) = col_major;
  auto block = big.block(1, 1, 2, 3);
  const Tensor<float> b = interop::from_eigen(block);
  CHECK(b.data() == &big(1, 1));
  CHECK(b.strides() == Strides{1, 5});
  CHECK(b.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});

  float raw[] = {1, -1, 2, -2, 3, -3};
  Eigen::Map<Eigen::VectorXf, Eigen::Unaligned, Eigen::InnerStride<2>> every_other(raw, 3);
  const Tensor<float> v = interop::from_eigen(every_other);
  CHECK(v.data() == raw);
  CHECK(v.shape() == Shape{3});
  CHECK(v.to_vector() == std::vector<float>{1, 2, 3});

  // writes through the view reach the user's matrix
  Tensor<float> writable = interop::from_eigen(col_major);
  writable.fill_(7.0f);
  CHECK(col_major(1, 2) == 7.0f);
}

TEST_CASE("interop: Eigen in, ops::linear, Eigen out: no copies where the layout allows", "[core][interop]") {
  Eigen::MatrixXf x = Eigen::MatrixXf::Random(4, 3);  // column-major activations (4, 3)
  Eigen::Matrix<float, 2, 3, Eigen::RowMajor> w;      // weight (out = 2, in = 3)
  w << 0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f;
  Eigen::Vector2f bias(0.1f, -0.2f);

  const Tensor<float> xt = interop::from_eigen(x), wt = interop::from_eigen(w),
                      bt = interop::from_eigen(bias);
  REQUIRE((xt.data() == x.data() && wt.data() == w.data() && bt.data() == bias.data()));
  const Tensor<float> y = ops::linear_forward(xt, wt, bt);  // (4, 2), bindery's own memory

  // the result, mapped as Eigen with no copy, equals Eigen's own arithmetic
  const interop::EigenStridedMap<float> ym = interop::to_eigen(y);
  CHECK(ym.data() == y.data());
  const Eigen::MatrixXf expected = (x * w.transpose()).rowwise() + bias.transpose();
  CHECK((ym - expected).cwiseAbs().maxCoeff() <= 1e-5f);
  const interop::EigenMap<float> packed = interop::to_eigen_contiguous(y);
  CHECK(packed.data() == y.data());

  // into an array the user already owns: a view of it, written in place
  Eigen::MatrixXf out(4, 2);
  Tensor<float> out_view = interop::from_eigen(out);
  out_view.copy_(y);
  CHECK((out - expected).cwiseAbs().maxCoeff() <= 1e-5f);

  // a transposed tensor maps in place with swapped strides
  const Tensor<float> yt = y.transpose(0, 1);  // (2, 4), strides (1, 2)
  const interop::EigenStridedMap<float> ytm = interop::to_eigen(yt);
  CHECK(ytm.data() == y.data());
  CHECK((ytm - expected.transpose()).cwiseAbs().maxCoeff() <= 1e-5f);
}

TEST_CASE("interop: layouts Eigen cannot express are typed errors naming shape and strides",
          "[core][interop]") {
  const Tensor<float> y = Tensor<float>::arange(6).reshape({2, 3});
  // the plain map wants row-major contiguous memory; a transposed view is not
  CHECK(throws_naming<ValueError>([&] { (void)interop::to_eigen_contiguous(y.transpose(0, 1)); },
                                  {"shape (3, 2)", "strides (1, 3)", ".contiguous()"}));
  CHECK(throws_naming<ShapeError>(
      [&] {
        (void)interop::to_eigen(y.reshape({1, 2, 3}));
      },
      {"(1, 2, 3)", "2-D"}));
  CHECK(throws_naming<ShapeError>([&] { (void)interop::to_eigen_vector(y); }, {"(2, 3)", "1-D"}));
  // a negative stride (a reversed view made from user memory) has no Eigen counterpart
  float raw[] = {1, 2, 3, 4, 5, 6};
  const Tensor<float> reversed = interop::borrow(raw + 5, Shape{2, 3}, Strides{-3, -1});
  CHECK(reversed.to_vector() == std::vector<float>{6, 5, 4, 3, 2, 1});
  CHECK(throws_naming<ValueError>([&] { (void)interop::to_eigen(reversed); },
                                  {"strides (-3, -1)", "negative"}));
  CHECK(throws_naming<ShapeError>([&] { (void)interop::borrow(raw, Shape{2, 3}, Strides{1}); }, {"(2, 3)"}));
}

#if defined(BINDERY_TEST_XTENSOR)

TEST_CASE("interop: xtensor containers and adaptors view in place", "[core][interop]") {
  xt::xtensor<float, 2> a = {{1, 2, 3}, {4, 5, 6}};
  const Tensor<float> at = interop::from_xtensor(a);
  CHECK(at.data() == a.data());
  CHECK(at.shape() == Shape{2, 3});
  CHECK(at.to_vector() == std::vector<float>{1, 2, 3, 4, 5, 6});

  xt::xarray<double, xt::layout_type::column_major> c = {{1, 2, 3}, {4, 5, 6}};
  const Tensor<double> ct = interop::from_xtensor(c);  // column-major: transposed strides
  CHECK(ct.data() == c.data());
  CHECK(ct.strides() == Strides{1, 2});
  CHECK(ct.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});

  std::vector<float> buffer{1, 2, 3, 4, 5, 6, 7, 8};
  auto adapted = xt::adapt(buffer.data(), size_t(4), xt::no_ownership(), std::vector<size_t>{2, 2},
                           std::vector<std::ptrdiff_t>{4, 2});
  const Tensor<float> st = interop::from_xtensor(adapted);
  CHECK(st.data() == buffer.data());
  CHECK(st.to_vector() == std::vector<float>{1, 3, 5, 7});

  // a reversed strided view: negative strides, viewed with no copy
  auto flipped = xt::view(a, xt::all(), xt::range(xt::placeholders::_, xt::placeholders::_, -1));
  const Tensor<float> ft = interop::from_xtensor(flipped);
  CHECK(ft.to_vector() == std::vector<float>{3, 2, 1, 6, 5, 4});
}

TEST_CASE("interop: xtensor in, ops::gelu, xtensor out", "[core][interop]") {
  xt::xtensor<float, 2> a = {{-1.0f, 0.0f, 0.5f}, {1.0f, 2.0f, -3.0f}};
  const Tensor<float> x = interop::from_xtensor(a);
  REQUIRE(x.data() == a.data());
  const Tensor<float> y = ops::gelu_forward(x);

  auto ya = interop::to_xtensor(y);
  CHECK(ya.data() == y.data());
  REQUIRE(ya.dimension() == 2);
  CHECK(ya.shape()[0] == 2);
  CHECK(ya.shape()[1] == 3);
  for (size_t i = 0; i < 2; ++i) {
    for (size_t j = 0; j < 3; ++j) {
      const double v = a(i, j);
      CHECK(std::fabs(ya(i, j) - 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)))) <= 1e-6);
    }
  }
  // strided: a transposed tensor adapts in place
  auto yt = interop::to_xtensor(y.transpose(0, 1));
  CHECK(yt.data() == y.data());
  CHECK(yt(2, 1) == ya(1, 2));
  // into a container the user owns: a view of it, written in place
  xt::xtensor<float, 2> out = xt::zeros<float>({2, 3});
  Tensor<float> out_view = interop::from_xtensor(out);
  out_view.copy_(y);
  CHECK(out(1, 2) == ya(1, 2));
  CHECK(out.data() == out_view.data());

  float raw[] = {1, 2, 3};
  const Tensor<float> reversed = interop::borrow(raw + 2, Shape{3}, Strides{-1});
  CHECK(throws_naming<ValueError>([&] { (void)interop::to_xtensor(reversed); },
                                  {"shape (3,)", "strides (-1)"}));
}

#endif

}  // namespace
