// examples/02_imagebind_digits/report.hpp — tables, plots and files of a run.
#pragma once

#include <bindery/eval/pca.hpp>
#include <bindery/plot/plot.hpp>
#include <bindery/plot/svg.hpp>
#include <bindery/models/imagebind/config.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <tuple>
#include <fstream>
#include <string>
#include <vector>

#include "recipe.hpp"

namespace digits {

/// modality_name, except "image" for vision and "IMU" in tables and legends.
inline const char* display_name(Modality m) {
  if (m == Modality::kVision) return "image";
  if (m == Modality::kImu) return "IMU";
  return ib::modality_name(m);
}

struct MeanStd {
  double mean = 0, std = 0;
};
inline MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  if (v.empty()) return r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  for (double x : v) r.std += (x - r.mean) * (x - r.mean);
  r.std = v.size() > 1 ? std::sqrt(r.std / static_cast<double>(v.size() - 1)) : 0.0;
  return r;
}

inline std::string pct(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * v);
  return buf;
}

class Report {
 public:
  Report(std::string out_dir, const Dataset& data, int threads, double data_seconds)
      : dir_(std::move(out_dir)), data_(data), threads_(threads), data_seconds_(data_seconds) {}

  /// model.safetensors (the reference's key layout), config.json and vocab.txt of a trained run.
  void save_model(const Recipe& recipe, const RecipeResult& r) {
    std::vector<std::pair<std::string, TensorT>> tensors;
    for (const auto& [name, value] : r.model->state_dict()) tensors.emplace_back(name, value);
    io::save_safetensors(dir_ + "/model.safetensors", tensors);
    ib::save_config(r.config, dir_ + "/config.json");
    recipe.vocab().save(dir_ + "/vocab.txt");
  }

  /// Prints the results table, writes report.md, results.json and the plots. True when every bound
  /// modality reaches `require` zero-shot top-1 (in every seed).
  bool write(const std::vector<RecipeResult>& runs, double total_seconds, double require) {
    const RecipeResult& r = runs.front();
    std::vector<Modality> bound;
    for (const auto& [m, s] : data_.test) bound.push_back(m);
    bool ok = true;
    std::string table =
        "| modality | emergent zero-shot top-1 (text prompts) | top-5 | supervised reference | gap | "
        "recall@1 / @5 "
        "to its image |\n|---|---|---|---|---|---|\n";
    nlohmann::json results{{"dataset", data_.name},
                           {"threads", threads_},
                           {"seeds", runs.size()},
                           {"seconds", {{"data", data_seconds_}, {"total", total_seconds}}},
                           {"chance", 0.1}};
    auto row = [&](Modality m) {
      std::vector<double> zs, sup, top5, r1, r5;
      for (const auto& run : runs) {
        const ModalityScores& s = run.scores.at(m);
        zs.push_back(s.zero_shot);
        top5.push_back(s.zero_shot_top5);
        sup.push_back(s.supervised);
        r1.push_back(s.recall1);
        r5.push_back(s.recall5);
        if (m != Modality::kVision && s.zero_shot < require) ok = false;
      }
      const MeanStd z = mean_std(zs), sv = mean_std(sup);
      std::string zero = pct(z.mean) + (runs.size() > 1 ? " ± " + pct(z.std) : "");
      const bool has_sup = sup.front() >= 0;
      std::string supervised = has_sup ? pct(sv.mean) + (runs.size() > 1 ? " ± " + pct(sv.std) : "") : "—";
      std::string gap = has_sup ? pct(sv.mean - z.mean) : "—";
      const bool has_recall = m != Modality::kVision && !data_.test.at(m).image_row.empty();
      std::string recall = has_recall ? pct(mean_std(r1).mean) + " / " + pct(mean_std(r5).mean) : "—";
      std::string name = display_name(m);
      if (m == Modality::kVision) name += " (stage 1, trained with text)";
      table += "| " + name + " | " + zero + " | " + pct(mean_std(top5).mean) + " | " + supervised + " | " +
               gap + " | " + recall + " |\n";
      nlohmann::json j{{"zero_shot_top1", zs}, {"zero_shot_top5", top5}};
      if (has_sup) j["supervised_top1"] = sup;
      if (has_recall) j["recall_to_image"] = {{"at1", r1}, {"at5", r5}};
      j["per_class_top1"] = r.scores.at(m).per_class;
      results["modalities"][display_name(m)] = j;
    };
    row(Modality::kVision);
    for (Modality m : bound) row(m);

    char timing[512];
    std::snprintf(timing, sizeof(timing),
                  "data %.1f s, stage 1 %.1f s, stage 2 %.1f s, supervised references %.1f s, total %.1f s "
                  "(%d threads)",
                  data_seconds_, r.seconds_stage1, r.seconds_stage2, r.seconds_supervised, total_seconds,
                  threads_);
    results["seconds"]["stage1"] = r.seconds_stage1;
    results["seconds"]["stage2"] = r.seconds_stage2;
    results["seconds"]["supervised"] = r.seconds_supervised;
    results["parameters"] = {{"image", r.params_vision}, {"text", r.params_text}};
    for (const auto& [m, p] : r.params) results["parameters"][display_name(m)] = p;

    std::string arithmetic;
    if (r.arithmetic.queries > 0) {
      const ArithmeticScores& a = r.arithmetic;
      arithmetic =
          "Embedding arithmetic: " + std::to_string(a.queries) +
          " test sounds, each asked with one of the ink colours; how often the test image nearest to\n"
          "each query shows:\n\n"
          "| query | shows the sound's digit | shows the asked colour | both |\n|---|---|---|---|\n"
          "| the sound alone | " +
          pct(a.audio_digit) + " | " + pct(a.audio_colour) + " (chance) | — |\n" +
          "| normalize(sound + text \"written in <colour> ink\") | " + pct(a.sum_digit) + " | " +
          pct(a.sum_colour) + " | " + pct(a.sum_both) + " |\n";
      results["arithmetic"] = {{"queries", a.queries},           {"audio_digit", a.audio_digit},
                               {"audio_colour", a.audio_colour}, {"sum_digit", a.sum_digit},
                               {"sum_colour", a.sum_colour},     {"sum_both", a.sum_both}};
    }
    std::printf("\n%s — emergent zero-shot (chance 10%%):\n\n%s\n%s\n", data_.name.c_str(), table.c_str(),
                timing);
    if (!arithmetic.empty()) std::printf("\n%s", arithmetic.c_str());
    plots(r, bound);

    std::ofstream md(dir_ + "/report.md");
    md << "# ImageBind on " << data_.name << "\n\n"
       << "Stage 1 trained the image and text encoders together (InfoNCE on image-caption pairs). Stage 2 "
          "froze "
          "them and bound each other modality to the image embeddings of its paired samples only. The "
          "zero-shot "
          "column classifies each bound modality's test samples by the most similar text prompt — a pairing "
          "never trained. Chance is 10%.";
    if (runs.size() > 1) md << " Values are mean ± standard deviation over " << runs.size() << " seeds.";
    md << "\n\n"
       << table << "\n"
       << timing << ".\n\n"
       << arithmetic << (arithmetic.empty() ? "" : "\n") << "![data](plots/data.png)\n\n"
       << "![zero-shot](plots/zero_shot_bars.svg)\n\n![curves](plots/training_curves.svg)\n\n"
       << "![zero-shot during stage 2](plots/zero_shot_curves.svg)\n\n![joint "
          "space](plots/embedding_pca.svg)\n\n";
    for (Modality m : bound)
      md << "![" << display_name(m) << " vs text](plots/similarity_" << ib::modality_name(m)
         << "_text.svg)\n\n";
    std::ofstream(dir_ + "/results.json") << results.dump(2) << "\n";
    if (require > 0)
      std::printf("every bound modality >= %s zero-shot top-1: %s\n", pct(require).c_str(),
                  ok ? "yes" : "NO");
    return ok;
  }

  // ---- the scaling sweep -----------------------------------------------------------------------

  void add_scaling_point(const EncoderSize& size, const RecipeResult& r) {
    scaling_.push_back({size, r.params_vision, {}});
    for (const auto& [m, s] : r.scores) scaling_.back().zero_shot[m] = s.zero_shot;
  }

  void write_scaling() {
    std::string table = "| image encoder (width x blocks) | parameters | image zero-shot |";
    std::vector<Modality> bound;
    for (const auto& [m, s] : data_.test) bound.push_back(m);
    for (Modality m : bound) table += std::string(" ") + display_name(m) + " emergent |";
    table += "\n|---|---|---|";
    for (size_t i = 0; i < bound.size(); ++i) table += "---|";
    table += "\n";
    std::vector<eval::Series> series;
    for (Modality m : bound) series.push_back({display_name(m), {}, {}});
    series.push_back({"image (stage 1)", {}, {}, "", true});
    for (const auto& p : scaling_) {
      char cells[128];
      std::snprintf(cells, sizeof(cells), "| %lld x %lld | %lld | %s |", static_cast<long long>(p.size.width),
                    static_cast<long long>(p.size.blocks), static_cast<long long>(p.params),
                    pct(p.zero_shot.at(Modality::kVision)).c_str());
      table += cells;
      for (size_t i = 0; i < bound.size(); ++i) {
        table += ' ';
        table += pct(p.zero_shot.at(bound[i]));
        table += " |";
        series[i].x.push_back(static_cast<double>(p.params));
        series[i].y.push_back(100.0 * p.zero_shot.at(bound[i]));
      }
      series.back().x.push_back(static_cast<double>(p.params));
      series.back().y.push_back(100.0 * p.zero_shot.at(Modality::kVision));
      table += "\n";
    }
    std::printf("\nscaling the image encoder (emergent zero-shot top-1):\n\n%s\n", table.c_str());
    eval::LineChartOptions options;
    options.title = "Emergent zero-shot vs image encoder size";
    options.x_label = "image encoder parameters";
    options.y_label = "zero-shot top-1 (%)";
    options.log_x = true;
    options.y_min = 0;
    options.y_max = 100;
    eval::save_svg(dir_ + "/plots/scaling.svg", eval::line_chart(series, options));
    std::ofstream(dir_ + "/scaling.md") << "# Scaling the image encoder\n\n"
                                        << table << "\n![scaling](plots/scaling.svg)\n";
  }

 private:
  struct ScalingPoint {
    EncoderSize size;
    int64_t params;
    std::map<Modality, double> zero_shot;
  };

  /// The run's metrics: metrics.jsonl when it exists (it spans every resumed process; a step logged
  /// twice, before a kill and after the resume, keeps its last record), else this process's history.
  std::vector<nlohmann::json> history(const RecipeResult& r) const {
    const std::string path = dir_ + "/metrics.jsonl";
    if (!std::filesystem::exists(path)) return r.history;
    std::map<std::tuple<std::string, int64_t, bool>, nlohmann::json> by_key;
    for (auto& rec : train::read_metrics(path))
      by_key[{rec.value("stage", ""), rec.value("step", int64_t{0}), rec.contains("eval")}] = rec;
    std::vector<nlohmann::json> out;
    for (auto& [key, rec] : by_key) out.push_back(std::move(rec));
    return out;
  }

  void plots(const RecipeResult& r, const std::vector<Modality>& bound) {
    const std::string p = dir_ + "/plots/";
    // 1. bars: emergent zero-shot vs supervised vs chance
    {
      std::vector<std::string> categories;
      eval::BarSeries zero{"emergent zero-shot (text prompts)", {}, ""}, sup{"supervised reference", {}, ""};
      for (Modality m : bound) {
        categories.push_back(display_name(m));
        zero.values.push_back(100 * r.scores.at(m).zero_shot);
        sup.values.push_back(r.scores.at(m).supervised >= 0 ? 100 * r.scores.at(m).supervised : std::nan(""));
      }
      eval::BarChartOptions o;
      o.title = "Top-1 accuracy on held-out samples";
      o.y_label = "top-1 (%)";
      o.y_max = 100;
      o.value_precision = 1;
      eval::save_svg(p + "zero_shot_bars.svg",
                     eval::bar_chart(categories, {zero, sup}, {{"chance 10%", 10.0, ""}}, o));
    }
    // 2. training curves: the loss of every task, by stage
    {
      std::map<std::string, eval::Series> losses;
      std::map<std::string, eval::Series> accuracy;
      std::map<std::string, int64_t> offset{{"stage 1", 0}};
      int64_t stage1_end = 0;
      for (const auto& rec : history(r)) {
        const std::string stage = rec.value("stage", "");
        if (stage == "supervised") continue;
        const int64_t step = rec.value("step", int64_t{0});
        if (stage == "stage 1") stage1_end = std::max(stage1_end, step);
        const double x = static_cast<double>(step + (stage == "stage 2" ? stage1_end : 0));
        if (rec.contains("loss"))
          for (const auto& [task, v] : rec["loss"].items()) {
            auto& s = losses[task];
            s.name = task == "image-text" ? "image-text (stage 1)" : task + " - image";
            s.x.push_back(x);
            s.y.push_back(v.get<double>());
          }
        if (rec.contains("eval") && rec["eval"].contains("zero_shot"))
          for (const auto& [m, v] : rec["eval"]["zero_shot"].items()) {
            auto& s = accuracy[m];
            s.name = m == "vision" ? "image (stage 1)" : m;
            s.x.push_back(x);
            s.y.push_back(100 * v.get<double>());
          }
      }
      std::vector<eval::Series> ls, as;
      for (auto& [k, s] : losses) ls.push_back(s);
      for (auto& [k, s] : accuracy) as.push_back(s);
      eval::LineChartOptions o;
      o.title = "Training loss (InfoNCE); stage 2 starts at step " + std::to_string(stage1_end);
      o.x_label = "step";
      o.y_label = "loss";
      o.log_y = true;
      eval::save_svg(p + "training_curves.svg", eval::line_chart(ls, o));
      o.title = "Zero-shot top-1 against text prompts during training";
      o.y_label = "top-1 (%)";
      o.log_y = false;
      o.y_min = 0;
      o.y_max = 100;
      eval::save_svg(p + "zero_shot_curves.svg", eval::line_chart(as, o));
    }
    // 3. similarity: class means of each bound modality's test embeddings vs the text prototypes
    std::vector<int64_t> proto_labels(10);
    std::iota(proto_labels.begin(), proto_labels.end(), 0);
    for (Modality m : bound) {
      const eval::Matrix s = eval::class_mean_similarity(r.test_embeddings.at(m), r.test_labels.at(m),
                                                         r.prototypes, proto_labels, 10);
      eval::HeatmapOptions o;
      o.title = std::string(display_name(m)) + " (test samples) vs text prompts: mean cosine similarity";
      o.y_label = std::string(display_name(m)) + " of digit";
      o.x_label = "text prompt of digit";
      o.annotate_precision = 2;
      eval::save_svg(p + "similarity_" + ib::modality_name(m) + "_text.svg",
                     eval::heatmap(s, kClassNames, kClassNames, o));
    }
    // 4. the joint space: PCA of test embeddings of every modality (and the text prototypes)
    {
      std::vector<float> rows;
      std::vector<eval::ScatterPoint> points;
      std::vector<std::string> groups;
      int64_t d = r.prototypes.cols;
      auto add = [&](const eval::Matrix& e, const std::vector<int64_t>& labels, int64_t limit) {
        const int64_t group = static_cast<int64_t>(groups.size());
        for (int64_t i = 0; i < std::min(e.rows, limit); ++i) {
          for (int64_t k = 0; k < d; ++k) rows.push_back(static_cast<float>(e(i, k)));
          points.push_back({0, 0, labels[static_cast<size_t>(i)], group});
        }
      };
      add(r.test_embeddings.at(Modality::kVision), r.test_labels.at(Modality::kVision), 150);
      groups.push_back("image");
      for (Modality m : bound) {
        add(r.test_embeddings.at(m), r.test_labels.at(m), 150);
        groups.push_back(display_name(m));
      }
      add(r.prototypes, proto_labels, 10);
      groups.push_back("text prompts");
      const auto fit = eval::pca(rows.data(), static_cast<int64_t>(points.size()), d, 2);
      for (size_t i = 0; i < points.size(); ++i) {
        points[i].x = fit.coordinate(static_cast<int64_t>(i), 0);
        points[i].y = fit.coordinate(static_cast<int64_t>(i), 1);
      }
      eval::ScatterOptions o;
      o.title = "The joint embedding space (PCA of test embeddings)";
      char axis[64];
      std::snprintf(axis, sizeof(axis), "PC 1 (%.0f%% of variance)", 100 * fit.explained_variance_ratio[0]);
      o.x_label = axis;
      std::snprintf(axis, sizeof(axis), "PC 2 (%.0f%% of variance)", 100 * fit.explained_variance_ratio[1]);
      o.y_label = axis;
      o.class_title = "digit";
      o.group_title = "modality";
      o.marker_radius = 3.0;
      eval::save_svg(p + "embedding_pca.svg", eval::scatter(points, kClassNames, groups, o));
    }
  }

  std::string dir_;
  const Dataset& data_;
  int threads_;
  double data_seconds_;
  std::vector<ScalingPoint> scaling_;
};

}  // namespace digits
