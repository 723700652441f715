#include "test_util.hpp"
#include "test_tensor_bodies.hpp"

using namespace bindery;
using bindery::testing::require_values;

TEST_CASE("views share storage and index correctly", "[core][tensor]") {
  auto t = Tensor<float>::arange(24).reshape({2, 3, 4});  // t[i][j][k] = 12i + 4j + k
  REQUIRE(t.at({1, 2, 3}) == 23.f);
  auto p = t.permute({2, 0, 1});  // (4, 2, 3)
  REQUIRE(p.shape() == Shape{4, 2, 3});
  REQUIRE(p.at({3, 1, 2}) == 23.f);
  REQUIRE(p.at({1, 0, 2}) == 9.f);
  REQUIRE_FALSE(p.is_contiguous());
  REQUIRE(p.shares_storage_with(t));
  auto pc = p.contiguous();
  REQUIRE(pc.is_contiguous());
  REQUIRE_FALSE(pc.shares_storage_with(t));
  REQUIRE(pc.at({1, 0, 2}) == 9.f);

  auto tr = t.transpose(0, 2);  // (4, 3, 2)
  REQUIRE(tr.at({3, 2, 1}) == 23.f);

  auto s = t.slice(2, 1, 4, 2);  // k in {1, 3}
  require_values(s, Shape{2, 3, 2}, {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23});
  auto neg = t.slice(1, -2, 100);  // j in {1, 2}
  REQUIRE(neg.shape() == Shape{2, 2, 4});
  REQUIRE(neg.at({0, 0, 0}) == 4.f);

  auto sel = t.select(1, 2);  // (2, 4), j = 2
  require_values(sel, Shape{2, 4}, {8, 9, 10, 11, 20, 21, 22, 23});
  REQUIRE(t.select(0, -1).at({0, 0}) == 12.f);

  auto col = Tensor<float>::from_vector({1, 2, 3}, {3, 1});
  auto e = col.expand({2, 3, 4});
  REQUIRE(e.strides() == Strides{0, 1, 0});
  require_values(e.contiguous().select(0, 1).select(1, 3), Shape{3}, {1, 2, 3});

  REQUIRE(t.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
  REQUIRE(t.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  REQUIRE(t.unsqueeze(1).squeeze(1).shape() == t.shape());
  REQUIRE(t.flatten(1).shape() == Shape{2, 12});
  REQUIRE(t.reshape({-1, 6}).shape() == Shape{4, 6});
  // reshape of a non-contiguous view copies, with the right order
  require_values(t.select(2, 0).reshape({6}), Shape{6}, {0, 4, 8, 12, 16, 20});
}

TEST_CASE("copy_ writes through views", "[core][tensor]") {
  auto t = Tensor<double>::zeros({3, 4});
  t.slice(1, 1, 3).copy_(Tensor<double>::ones({3, 2}));
  require_values(t, Shape{3, 4}, {0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0});
  t.select(0, 2).fill_(7.0);
  REQUIRE(t.at({2, 0}) == 7.0);
  REQUIRE(t.at({1, 0}) == 0.0);
  auto c = t.clone();
  c.fill_(0.0);
  REQUIRE(t.at({2, 3}) == 7.0);
}

TEST_CASE("Philox streams are reproducible and well distributed", "[core][random]") {
  Philox a(42), b(42);
  auto x = Tensor<double>::uniform({10000}, a);
  auto y = Tensor<double>::uniform({10000}, b);
  REQUIRE(x.to_vector() == y.to_vector());
  REQUIRE(a.offset() == 10000);
  auto z = Tensor<double>::uniform({10000}, a);  // continues the stream: different numbers
  REQUIRE(x.to_vector() != z.to_vector());
  double mean = 0, lo = 1, hi = 0;
  for (double v : x.to_vector()) {
    mean += v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  mean /= 10000;
  REQUIRE(std::fabs(mean - 0.5) < 0.01);
  REQUIRE(lo >= 0.0);
  REQUIRE(hi < 1.0);

  Philox n_rng(7);
  auto n = Tensor<double>::normal({20000}, n_rng, 1.0, 2.0).to_vector();
  double m = 0, v2 = 0;
  for (double v : n) m += v;
  m /= n.size();
  for (double v : n) v2 += (v - m) * (v - m);
  v2 /= n.size();
  REQUIRE(std::fabs(m - 1.0) < 0.05);
  REQUIRE(std::fabs(std::sqrt(v2) - 2.0) < 0.05);

  Philox t_rng(9);
  auto tn = Tensor<double>::truncated_normal({20000}, t_rng, 0.0, 1.0, -1.0, 1.0).to_vector();
  double tm = 0, tv = 0;
  for (double v : tn) {
    REQUIRE(v >= -1.0);
    REQUIRE(v <= 1.0);
    tm += v;
    tv += v * v;
  }
  tm /= tn.size();
  tv /= tn.size();
  REQUIRE(std::fabs(tm) < 0.02);
  // variance of N(0,1) truncated to [-1, 1]: 1 - 2 φ(1) / (2Φ(1) - 1) = 0.29112
  REQUIRE(std::fabs(tv - 0.29112) < 0.01);
}

TEST_CASE("erfinv inverts erf", "[core][random]") {
  for (double x : {-0.999999, -0.9, -0.5, -1e-8, 0.0, 0.3, 0.7, 0.99, 0.9999999}) {
    REQUIRE(std::fabs(std::erf(bindery::detail::erfinv(x)) - x) < 1e-14);
  }
}

TEST_CASE("bad shapes raise bindery errors naming the shapes", "[core][errors]") {
  auto t = Tensor<float>::zeros({2, 3});
  BINDERY_REQUIRE_THROWS_WITH_ALL(t.reshape({4, 2}), ShapeError, "(2, 3)", "(4, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(t.expand({2, 4}), ShapeError, "(2, 3)", "(2, 4)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(t.select(0, 2), IndexError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(t.permute({0, 0}), ShapeError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(t.transpose(0, 2), IndexError, "(2, 3)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(Tensor<float>::from_vector({1, 2, 3}, {2, 2}), ShapeError, "(2, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(broadcast_shapes(Shape{2, 3}, Shape{4}), ShapeError, "(2, 3)", "(4,)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(t.permute({1, 0}).view({6}), ShapeError, "(3, 2)");
  REQUIRE_THROWS_AS(Tensor<float>().data(), ValueError);
  REQUIRE_THROWS_AS(Shape({2, -1}), ShapeError);
}

TEST_CASE("printing and backend copies", "[core][tensor]") {
  auto t = Tensor<float>::arange(6).reshape({2, 3});
  std::ostringstream os;
  os << t;
  REQUIRE(os.str() == "tensor([[0, 1, 2],\n [3, 4, 5]], shape=(2, 3), backend=cpu)");
  auto same = t.to<Cpu>();
  REQUIRE(same.shares_storage_with(t));
  auto d = t.cast<double>();
  require_values(d, Shape{2, 3}, {0, 1, 2, 3, 4, 5});
}

TEST_CASE("SkipRandomInit allocates without drawing but keeps the stream position", "[core][random]") {
  Philox a(3), b(3);
  Tensor<float> skipped;
  {
    SkipRandomInit guard;
    skipped = Tensor<float>::normal({5}, a);
  }
  REQUIRE(skipped.shape() == Shape{5});
  REQUIRE(a.offset() == 5);
  auto drawn = Tensor<float>::normal({5}, b);
  REQUIRE(b.offset() == 5);
  // after the guard, draws are real again and continue the same stream
  REQUIRE(Tensor<float>::normal({5}, a).to_vector() == Tensor<float>::normal({5}, b).to_vector());
}

TEST_CASE("zero-size tensors are contiguous: reshape, contiguous and clone terminate (issue 18, 1)",
          "[core][tensor][hardening]") {
  // contiguous_strides counts a zero extent as 1, so (2, 0) has strides (1, 1); is_contiguous must
  // agree, or reshape -> contiguous -> clone -> reshape recursed until the stack overflowed.
  for (const Shape& shape : {Shape{2, 0}, Shape{0, 3, 4}, Shape{3, 0, 2}, Shape{0}}) {
    const auto t = Tensor<float>::empty(shape);
    REQUIRE(t.numel() == 0);
    REQUIRE(t.is_contiguous());
    REQUIRE(t.contiguous().shape() == shape);
    REQUIRE(t.clone().shape() == shape);
    REQUIRE(t.clone().is_contiguous());
    REQUIRE(t.reshape({5, 0}).shape() == Shape{5, 0});
    REQUIRE(t.reshape(shape.dims()).shape() == shape);
    REQUIRE(t.view(shape).numel() == 0);
  }
  const auto z = Tensor<float>::empty({2, 0});
  REQUIRE(z.reshape({0, 2}).shape() == Shape{0, 2});
  REQUIRE(z.transpose(0, 1).reshape({0}).numel() == 0);
  REQUIRE(z.unsqueeze(0).contiguous().shape() == Shape{1, 2, 0});
  REQUIRE(Tensor<float>::empty({0, 3, 4}).permute({2, 0, 1}).contiguous().shape() == Shape{4, 0, 3});
  REQUIRE(contiguous_strides(Shape{2, 0}) == Strides{1, 1});
}

TEST_CASE("shape arithmetic is overflow-checked, zero-size shapes included (issue 18, 2)",
          "[core][errors][hardening]") {
  constexpr int64_t k62 = int64_t{1} << 62;
  // (0, 2^62, 4) holds 0 elements, but its contiguous strides (2^64, 4, 1) overflow int64.
  BINDERY_REQUIRE_THROWS_WITH_ALL(Shape({0, k62, 4}), ShapeError, "(0, 4611686018427387904, 4)", "overflows");
  BINDERY_REQUIRE_THROWS_WITH_ALL(Shape({k62, 4, 0}), ShapeError, "overflows");
  BINDERY_REQUIRE_THROWS_WITH_ALL(Shape({k62, 2}), ShapeError, "overflows");
  REQUIRE_THROWS_AS(Tensor<float>::empty(Shape(std::vector<int64_t>{0, k62, 4})), ShapeError);
  // Extents written through operator[] are checked when used.
  Shape s{0, 1, 4};
  s[1] = k62;
  REQUIRE_THROWS_AS(s.numel(), ShapeError);
  REQUIRE_THROWS_AS(contiguous_strides(s), ShapeError);
  Shape grow{0, 4};
  REQUIRE_THROWS_AS(grow.insert(0, k62), ShapeError);
  // The largest representable zero-size shapes still work.
  REQUIRE(Shape({0, k62, 1}).numel() == 0);
  REQUIRE(contiguous_strides(Shape{0, k62}) == Strides{k62, 1});
  // A view whose strides reach past int64 is an IndexError, not a wrapped bounds check.
  const auto t = Tensor<float>::zeros({4});
  REQUIRE_THROWS_AS(t.as_strided(Shape{2, 2}, Strides{std::numeric_limits<int64_t>::max(), 1}, 0),
                    IndexError);
  REQUIRE_THROWS_AS(t.as_strided(Shape{3}, Strides{k62}, 0), IndexError);
  // A valid shape whose byte count wraps size_t: refused by the backend, not a small allocation.
  REQUIRE_THROWS_AS(Tensor<double>::empty(Shape{int64_t{1} << 61}), BackendError);
  REQUIRE_THROWS_AS(Tensor<float>::empty(Shape{k62, 1}), BackendError);
  // concat sums extents along the axis: zero-size inputs with huge extents cannot overflow the sum.
  const auto wide = Tensor<float>::empty(Shape{0, k62});
  const auto join = [](const std::vector<Tensor<float>>& xs) { return ops::concat_forward(xs, 1); };
  BINDERY_REQUIRE_THROWS_WITH_ALL(join({wide, wide}), ShapeError, "concat",
                                  "(0, 4611686018427387904), (0, 4611686018427387904)", "overflow int64");
  REQUIRE(join({wide, Tensor<float>::empty({0, 3})}).shape() == Shape{0, k62 + 3});
  // reshape's -1 inference multiplies the known extents: checked too.
  REQUIRE_THROWS_AS(Tensor<float>::empty({0}).reshape({k62, 4, -1}), ShapeError);
}
