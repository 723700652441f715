// bindery/eval/zero_shot.hpp — what a joint embedding space is good for, measured.
//
//   zero-shot classification   each class is described by text prompts ("a photo of a {}"); the class
//                              prototype is the mean of its prompts' normalized embeddings,
//                              normalized again (CLIP's prompt ensemble). A sample's prediction is
//                              the prototype with the highest cosine similarity.
//   retrieval recall@k         row i of A belongs with row i of B; recall@k(A->B) is the fraction of
//                              rows of A whose partner is among the k most similar rows of B.
//   embedding arithmetic       normalize each embedding, weight, sum, normalize: the nearest
//                              neighbours of the result in a gallery (ImageBind's "image + audio").
//   similarity matrices        cosine similarities, and their class means (C x C) for plots.
//
// Everything here is inference on finished embeddings: plain tensors (no autograd), read on the host
// in double. Embeddings of any backend are copied to the host once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"

namespace bindery::eval {

/// A row-major host matrix in double: the working type of this header.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> values;

  Matrix() = default;
  Matrix(int64_t r, int64_t c) : rows(r), cols(c), values(static_cast<size_t>(r * c), 0.0) {}
  double& operator()(int64_t i, int64_t j) { return values[static_cast<size_t>(i * cols + j)]; }
  double operator()(int64_t i, int64_t j) const { return values[static_cast<size_t>(i * cols + j)]; }
  const double* row(int64_t i) const { return values.data() + i * cols; }
  double* row(int64_t i) { return values.data() + i * cols; }
};

/// (N, D) tensor of any backend and type -> host Matrix. Throws ShapeError unless rank 2.
template <class T, class B>
Matrix to_matrix(const Tensor<T, B>& x, const char* what = "embeddings") {
  BINDERY_CHECK(x.rank() == 2, ShapeError, what, " of shape ", x.shape(), " must be (N, D)");
  const std::vector<T> host = x.contiguous().to_vector();
  Matrix m(x.shape()[0], x.shape()[1]);
  std::transform(host.begin(), host.end(), m.values.begin(), [](T v) { return static_cast<double>(v); });
  return m;
}

/// Each row divided by its L2 norm (rows of norm 0 stay 0).
inline Matrix normalize_rows(Matrix m) {
  for (int64_t i = 0; i < m.rows; ++i) {
    double* r = m.row(i);
    double norm = 0.0;
    for (int64_t j = 0; j < m.cols; ++j) norm += r[j] * r[j];
    norm = std::sqrt(norm);
    if (norm > 0)
      for (int64_t j = 0; j < m.cols; ++j) r[j] /= norm;
  }
  return m;
}

/// Cosine similarities (Na, Nb) between the rows of a (Na, D) and b (Nb, D).
inline Matrix cosine_similarity(const Matrix& a, const Matrix& b) {
  BINDERY_CHECK(a.cols == b.cols, ShapeError, "cosine_similarity: a of shape (", a.rows, ", ", a.cols,
                ") and b of shape (", b.rows, ", ", b.cols, ") have different embedding sizes");
  const Matrix an = normalize_rows(a), bn = normalize_rows(b);
  Matrix s(a.rows, b.rows);
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < b.rows; ++j) {
      double dot = 0.0;
      for (int64_t k = 0; k < a.cols; ++k) dot += an(i, k) * bn(j, k);
      s(i, j) = dot;
    }
  return s;
}

// ---- zero-shot classification -------------------------------------------------------------------

/// Prompt templates with "{}" where the class name goes ("a photo of a {}.").
inline std::string fill_template(const std::string& templ, const std::string& name) {
  const size_t at = templ.find("{}");
  BINDERY_CHECK(at != std::string::npos, ValueError, "fill_template: template '", templ,
                "' has no {} placeholder");
  return templ.substr(0, at) + name + templ.substr(at + 2);
}

/// Class prototypes (C, D) from a prompt ensemble: encode(prompts) must return one embedding row per
/// prompt. For class c, the embeddings of every template filled with class_names[c] are normalized,
/// averaged and normalized again.
inline Matrix prompt_prototypes(const std::function<Matrix(const std::vector<std::string>&)>& encode,
                                const std::vector<std::string>& class_names,
                                const std::vector<std::string>& templates) {
  BINDERY_CHECK(!class_names.empty() && !templates.empty(), ValueError,
                "prompt_prototypes: ", class_names.size(), " classes and ", templates.size(),
                " templates (need at least one of each)");
  std::vector<std::string> prompts;
  for (const auto& name : class_names)
    for (const auto& t : templates) prompts.push_back(fill_template(t, name));
  const Matrix e = normalize_rows(encode(prompts));
  const auto n_classes = static_cast<int64_t>(class_names.size());
  const auto n_templates = static_cast<int64_t>(templates.size());
  BINDERY_CHECK(e.rows == n_classes * n_templates, ShapeError, "prompt_prototypes: encode returned ", e.rows,
                " rows for ", n_classes * n_templates, " prompts");
  Matrix proto(n_classes, e.cols);
  for (int64_t c = 0; c < n_classes; ++c)
    for (int64_t t = 0; t < n_templates; ++t)
      for (int64_t k = 0; k < e.cols; ++k) proto(c, k) += e(c * n_templates + t, k);
  return normalize_rows(proto);
}

struct ZeroShotResult {
  double top1 = 0.0, top5 = 0.0;
  std::vector<int64_t> predictions;             // argmax class per sample
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted] counts
  std::vector<double> per_class;                // top-1 per true class (NaN when a class is absent)
};

/// Classifies each row of `embeddings` (N, D) by the most similar prototype (C, D); labels in [0, C).
inline ZeroShotResult zero_shot(const Matrix& embeddings, const Matrix& prototypes,
                                const std::vector<int64_t>& labels) {
  BINDERY_CHECK(static_cast<int64_t>(labels.size()) == embeddings.rows, ShapeError,
                "zero_shot: ", labels.size(), " labels for ", embeddings.rows, " embeddings");
  const Matrix s = cosine_similarity(embeddings, prototypes);
  const int64_t n = embeddings.rows, c = prototypes.rows;
  ZeroShotResult r;
  r.confusion.assign(static_cast<size_t>(c), std::vector<int64_t>(static_cast<size_t>(c), 0));
  std::vector<int64_t> order(static_cast<size_t>(c));
  int64_t hit1 = 0, hit5 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = labels[static_cast<size_t>(i)];
    BINDERY_CHECK(y >= 0 && y < c, IndexError, "zero_shot: label ", y, " of sample ", i, " outside [0, ", c,
                  ")");
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t p, int64_t q) { return s(i, p) > s(i, q); });
    r.predictions.push_back(order[0]);
    ++r.confusion[static_cast<size_t>(y)][static_cast<size_t>(order[0])];
    hit1 += order[0] == y;
    hit5 += std::find(order.begin(), order.begin() + std::min<int64_t>(5, c), y) !=
            order.begin() + std::min<int64_t>(5, c);
  }
  r.top1 = n ? static_cast<double>(hit1) / static_cast<double>(n) : 0.0;
  r.top5 = n ? static_cast<double>(hit5) / static_cast<double>(n) : 0.0;
  for (int64_t y = 0; y < c; ++y) {
    const auto& row = r.confusion[static_cast<size_t>(y)];
    const int64_t total = std::accumulate(row.begin(), row.end(), int64_t{0});
    r.per_class.push_back(
        total ? static_cast<double>(row[static_cast<size_t>(y)]) / static_cast<double>(total) : std::nan(""));
  }
  return r;
}

// ---- retrieval --------------------------------------------------------------------------------------

struct RecallResult {
  std::vector<int64_t> ks;
  std::vector<double> a_to_b, b_to_a;  // recall@ks[i]
};

/// Paired rows (row i of a with row i of b): recall@k in both directions.
inline RecallResult retrieval_recall(const Matrix& a, const Matrix& b,
                                     const std::vector<int64_t>& ks = {1, 5}) {
  BINDERY_CHECK(a.rows == b.rows && a.cols == b.cols, ShapeError, "retrieval_recall: a of shape (", a.rows,
                ", ", a.cols, ") and b of shape (", b.rows, ", ", b.cols, ") must match (paired rows)");
  const Matrix s = cosine_similarity(a, b);
  const int64_t n = a.rows;
  // rank of the partner: how many candidates score strictly higher.
  std::vector<int64_t> rank_ab(static_cast<size_t>(n), 0), rank_ba(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      rank_ab[static_cast<size_t>(i)] += s(i, j) > s(i, i);
      rank_ba[static_cast<size_t>(i)] += s(j, i) > s(i, i);
    }
  RecallResult r{ks, {}, {}};
  for (int64_t k : ks) {
    BINDERY_CHECK(k >= 1, ValueError, "retrieval_recall: k = ", k, " must be >= 1");
    int64_t ab = 0, ba = 0;
    for (int64_t i = 0; i < n; ++i) {
      ab += rank_ab[static_cast<size_t>(i)] < k;
      ba += rank_ba[static_cast<size_t>(i)] < k;
    }
    r.a_to_b.push_back(n ? static_cast<double>(ab) / static_cast<double>(n) : 0.0);
    r.b_to_a.push_back(n ? static_cast<double>(ba) / static_cast<double>(n) : 0.0);
  }
  return r;
}

// ---- embedding arithmetic ----------------------------------------------------------------------------

/// normalize(sum_i weights[i] * normalize(parts[i])): parts are single embeddings of one space.
inline std::vector<double> combine(const std::vector<std::vector<double>>& parts,
                                   const std::vector<double>& weights) {
  BINDERY_CHECK(!parts.empty() && parts.size() == weights.size(), ValueError, "combine: ", parts.size(),
                " embeddings and ", weights.size(), " weights");
  std::vector<double> out(parts[0].size(), 0.0);
  for (size_t p = 0; p < parts.size(); ++p) {
    BINDERY_CHECK(parts[p].size() == out.size(), ShapeError, "combine: embedding ", p, " has ",
                  parts[p].size(), " values, the first ", out.size());
    double norm = 0.0;
    for (double v : parts[p]) norm += v * v;
    norm = norm > 0 ? std::sqrt(norm) : 1.0;
    for (size_t k = 0; k < out.size(); ++k) out[k] += weights[p] * parts[p][k] / norm;
  }
  double norm = 0.0;
  for (double v : out) norm += v * v;
  if (norm > 0)
    for (double& v : out) v /= std::sqrt(norm);
  return out;
}

struct Neighbour {
  int64_t index;
  double similarity;
};

/// The k rows of `gallery` most cosine-similar to `query`, best first.
inline std::vector<Neighbour> nearest(const std::vector<double>& query, const Matrix& gallery, int64_t k) {
  BINDERY_CHECK(static_cast<int64_t>(query.size()) == gallery.cols, ShapeError, "nearest: query of ",
                query.size(), " values for a gallery of shape (", gallery.rows, ", ", gallery.cols, ")");
  Matrix q(1, gallery.cols);
  std::copy(query.begin(), query.end(), q.values.begin());
  const Matrix s = cosine_similarity(q, gallery);
  std::vector<Neighbour> all;
  for (int64_t j = 0; j < gallery.rows; ++j) all.push_back({j, s(0, j)});
  k = std::clamp<int64_t>(k, 0, gallery.rows);
  std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const Neighbour& x, const Neighbour& y) {
    return x.similarity > y.similarity || (x.similarity == y.similarity && x.index < y.index);
  });
  all.resize(static_cast<size_t>(k));
  return all;
}

/// Mean cosine similarity between the rows of class i in a and class j in b: (C, C).
inline Matrix class_mean_similarity(const Matrix& a, const std::vector<int64_t>& labels_a, const Matrix& b,
                                    const std::vector<int64_t>& labels_b, int64_t classes) {
  BINDERY_CHECK(
      static_cast<int64_t>(labels_a.size()) == a.rows && static_cast<int64_t>(labels_b.size()) == b.rows,
      ShapeError, "class_mean_similarity: ", labels_a.size(), " and ", labels_b.size(), " labels for ",
      a.rows, " and ", b.rows, " rows");
  const Matrix s = cosine_similarity(a, b);
  Matrix sum(classes, classes), count(classes, classes);
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < b.rows; ++j) {
      const int64_t ya = labels_a[static_cast<size_t>(i)], yb = labels_b[static_cast<size_t>(j)];
      BINDERY_CHECK(ya >= 0 && ya < classes && yb >= 0 && yb < classes, IndexError,
                    "class_mean_similarity: label outside [0, ", classes, ")");
      sum(ya, yb) += s(i, j);
      count(ya, yb) += 1;
    }
  for (size_t k = 0; k < sum.values.size(); ++k)
    sum.values[k] = count.values[k] > 0 ? sum.values[k] / count.values[k] : std::nan("");
  return sum;
}

}  // namespace bindery::eval
