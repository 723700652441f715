// Tests of eval/zero_shot.hpp: prompt-ensemble prototypes, zero-shot accuracy and confusion,
// retrieval recall@k, embedding arithmetic, class-mean similarity — on hand-made embeddings.
#include "test_util.hpp"

#include <bindery/eval/zero_shot.hpp>

using namespace bindery;
using eval::Matrix;

namespace {

Matrix matrix(int64_t rows, int64_t cols, std::vector<double> values) {
  Matrix m(rows, cols);
  m.values = std::move(values);
  return m;
}

}  // namespace

TEST_CASE("eval: to_matrix, normalize_rows, cosine_similarity", "[eval][zero_shot]") {
  const Tensor<float> x = Tensor<float>::from_vector({3, 4, 0, 0, 0, 2}, {3, 2});
  const Matrix m = eval::to_matrix(x);
  CHECK(m.rows == 3);
  CHECK(m(0, 1) == 4.0);
  const Matrix n = eval::normalize_rows(m);
  CHECK(n(0, 0) == Approx(0.6));
  CHECK(n(1, 0) == 0.0);  // a zero row stays zero
  const Matrix s = eval::cosine_similarity(m, matrix(2, 2, {1, 0, 0, 1}));
  CHECK(s(0, 0) == Approx(0.6));
  CHECK(s(0, 1) == Approx(0.8));
  CHECK(s(2, 1) == Approx(1.0));
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::to_matrix(Tensor<float>::zeros({2, 2, 2})), ShapeError, "(2, 2, 2)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::cosine_similarity(m, matrix(1, 3, {1, 2, 3})), ShapeError, "(3, 2)",
                                  "(1, 3)");
}

TEST_CASE("eval: prompt prototypes average normalized prompt embeddings", "[eval][zero_shot]") {
  CHECK(eval::fill_template("a photo of a {}.", "dog") == "a photo of a dog.");
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::fill_template("no slot", "dog"), ValueError, "no slot");
  std::vector<std::string> seen;
  // "cat" prompts point along x (lengths differ: normalization first), "dog" along y and x+y.
  auto encode = [&](const std::vector<std::string>& prompts) {
    seen = prompts;
    return matrix(4, 2, {10, 0, 0.5, 0, 0, 3, 2, 2});
  };
  const Matrix p = eval::prompt_prototypes(encode, {"cat", "dog"}, {"a {}", "the {}!"});
  CHECK(seen == std::vector<std::string>{"a cat", "the cat!", "a dog", "the dog!"});
  CHECK(p(0, 0) == Approx(1.0));
  CHECK(p(0, 1) == Approx(0.0));
  // (0,1) + (1/sqrt2, 1/sqrt2) normalized: angle 67.5 degrees
  CHECK(p(1, 0) == Approx(std::cos(67.5 * M_PI / 180)));
  CHECK(p(1, 1) == Approx(std::sin(67.5 * M_PI / 180)));
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::prompt_prototypes(encode, {"cat"}, {"a {}"}), ShapeError, "4 rows",
                                  "1 prompts");
}

TEST_CASE("eval: zero-shot top-1, top-5, confusion, per class", "[eval][zero_shot]") {
  const Matrix protos = matrix(3, 2, {1, 0, 0, 1, -1, 0});
  const Matrix e = matrix(4, 2, {0.9, 0.1, 0.2, 0.8, -1, 0.1, 0.1, 1});
  const eval::ZeroShotResult r = eval::zero_shot(e, protos, {0, 1, 2, 0});
  CHECK(r.predictions == std::vector<int64_t>{0, 1, 2, 1});
  CHECK(r.top1 == Approx(0.75));
  CHECK(r.top5 == Approx(1.0));  // 3 classes: always within the top 5
  CHECK(r.confusion[0][1] == 1);
  CHECK(r.per_class[0] == Approx(0.5));
  CHECK(r.per_class[2] == Approx(1.0));
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::zero_shot(e, protos, {0, 1}), ShapeError, "2 labels", "4 embeddings");
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::zero_shot(e, protos, {0, 1, 3, 0}), IndexError, "label 3");
}

TEST_CASE("eval: retrieval recall@k in both directions", "[eval][zero_shot]") {
  // a_i matches b_i except row 2 of a, which is closest to b_0 then b_2.
  const Matrix a = matrix(3, 2, {1, 0, 0, 1, 1, 0.2});
  const Matrix b = matrix(3, 2, {1, 0, 0, 1, 1, 0.5});
  const eval::RecallResult r = eval::retrieval_recall(a, b, {1, 2});
  CHECK(r.a_to_b[0] == Approx(2.0 / 3));
  CHECK(r.a_to_b[1] == Approx(1.0));
  // b -> a: b_0 ranks a_0 (cos 1) first; b_2 ranks a_2 first (cos 0.99)
  CHECK(r.b_to_a[0] == Approx(1.0));
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::retrieval_recall(a, matrix(2, 2, {1, 0, 0, 1})), ShapeError, "(3, 2)",
                                  "(2, 2)");
}

TEST_CASE("eval: embedding arithmetic and nearest neighbours", "[eval][zero_shot]") {
  const std::vector<double> c = eval::combine({{2, 0}, {0, 5}}, {1.0, 1.0});
  CHECK(c[0] == Approx(std::sqrt(0.5)));
  CHECK(c[1] == Approx(std::sqrt(0.5)));
  const Matrix gallery = matrix(4, 2, {1, 0, 0, 1, 1, 1, -1, 0});
  const auto nn = eval::nearest(c, gallery, 2);
  REQUIRE(nn.size() == 2);
  CHECK(nn[0].index == 2);
  CHECK(nn[0].similarity == Approx(1.0));
  CHECK(nn[1].index == 0);  // ties broken by index
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::combine({{1, 0}, {1, 0, 0}}, {1, 1}), ShapeError, "3 values");
  BINDERY_REQUIRE_THROWS_WITH_ALL(eval::nearest({1, 0, 0}, gallery, 1), ShapeError, "(4, 2)");
}

TEST_CASE("eval: class-mean similarity", "[eval][zero_shot]") {
  const Matrix a = matrix(3, 2, {1, 0, 1, 0, 0, 1});
  const Matrix b = matrix(2, 2, {1, 0, 0, 1});
  const Matrix s = eval::class_mean_similarity(a, {0, 0, 1}, b, {0, 1}, 3);
  CHECK(s(0, 0) == Approx(1.0));
  CHECK(s(0, 1) == Approx(0.0));
  CHECK(s(1, 1) == Approx(1.0));
  CHECK(std::isnan(s(2, 2)));  // class 2 absent
}
