// bindery/train/progress.hpp — a progress bar for long work, and a JSONL metrics log.
//
//   train::ProgressBar bar("stage 1", total_steps);
//   for (...) bar.update(step + 1, {{"loss", loss}}, /*items=*/batch);   // redraws at most 10x/s
//   bar.finish();
//
// On a terminal (stderr is a TTY) the bar redraws one line in place:
//   stage 1 [##########..........]  512/1000  51%  loss 1.234  812.4 it/s  ETA 0:07
// Otherwise (CI logs, pipes) it prints a plain line every 10% so logs stay short. message() prints a
// line above the bar without breaking it.
//
// MetricsLog appends one JSON object per line (step, time, values) and flushes each line, so a
// killed run keeps every line written before it died.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bindery/core/error.hpp"
#include "bindery/io/json.hpp"

namespace bindery::train {

/// "m:ss" or "h:mm:ss".
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char out[32];
  if (s >= 3600)
    std::snprintf(out, sizeof(out), "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(out, sizeof(out), "%lld:%02lld", s / 60, s % 60);
  return out;
}

class ProgressBar {
 public:
  using Values = std::vector<std::pair<std::string, double>>;

  /// `unit` names what update()'s `items` counts ("samples"); throughput is shown per second.
  ProgressBar(std::string label, int64_t total, std::string unit = "it", std::FILE* out = stderr)
      : label_(std::move(label)),
        unit_(std::move(unit)),
        total_(total > 0 ? total : 1),
        out_(out),
        tty_(::isatty(::fileno(out)) != 0),
        start_(std::chrono::steady_clock::now()),
        last_draw_(start_) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Records that `done` of total steps are finished (`items` more units processed by this update)
  /// and redraws when due. The first update after a resume may start above 0.
  void update(int64_t done, const Values& values = {}, int64_t items = 1) {
    if (first_done_ < 0) first_done_ = done - 1;
    done_ = done;
    items_ += items;
    values_ = values;
    const auto now = std::chrono::steady_clock::now();
    const bool due =
        tty_ ? now - last_draw_ > std::chrono::milliseconds(100) : done * 10 / total_ != printed_decile_;
    if (due || done >= total_) draw(now);
  }
  /// Prints a line of text above the bar.
  void message(const std::string& text) {
    if (tty_ && drawn_) std::fprintf(out_, "\r\033[K");
    std::fprintf(out_, "%s\n", text.c_str());
    if (tty_ && drawn_) draw(std::chrono::steady_clock::now());
    std::fflush(out_);
  }
  /// Ends the bar (draws the final state once).
  void finish() {
    if (finished_) return;
    finished_ = true;
    if (done_ > 0 && !(last_drawn_done_ == done_)) draw(std::chrono::steady_clock::now());
    if (tty_ && drawn_) std::fprintf(out_, "\n");
    std::fflush(out_);
  }
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  void draw(std::chrono::steady_clock::time_point now) {
    last_draw_ = now;
    last_drawn_done_ = done_;
    printed_decile_ = done_ * 10 / total_;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(items_) / seconds : 0.0;
    const double steps_rate = seconds > 0 ? static_cast<double>(done_ - first_done_) / seconds : 0.0;
    const double eta = steps_rate > 0 ? static_cast<double>(total_ - done_) / steps_rate : NAN;
    std::string line = label_ + " ";
    if (tty_) {
      constexpr int64_t kWidth = 24;
      const int64_t filled = std::clamp<int64_t>(kWidth * done_ / total_, 0, kWidth);
      line += '[';
      for (int64_t k = 0; k < kWidth; ++k) line += k < filled ? '#' : '.';
      line += "] ";
    }
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%lld/%lld %3d%%", static_cast<long long>(done_),
                  static_cast<long long>(total_), static_cast<int>(100 * done_ / total_));
    line += buf;
    for (const auto& [name, value] : values_) {
      std::snprintf(buf, sizeof(buf), "  %s %.4g", name.c_str(), value);
      line += buf;
    }
    std::snprintf(buf, sizeof(buf), "  %.1f %s/s  %s %s", rate, unit_.c_str(),
                  done_ >= total_ ? "took" : "ETA", format_duration(done_ >= total_ ? seconds : eta).c_str());
    line += buf;
    if (tty_)
      std::fprintf(out_, "\r\033[K%s", line.c_str());
    else
      std::fprintf(out_, "%s\n", line.c_str());
    drawn_ = true;
    std::fflush(out_);
  }

  std::string label_, unit_;
  int64_t total_;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int64_t done_ = 0, first_done_ = -1, items_ = 0, printed_decile_ = -1, last_drawn_done_ = -1;
  Values values_;
  bool drawn_ = false, finished_ = false;
};

/// Appends JSON lines {"step": s, "time": seconds, ...values} to a file (opened in append mode, so a
/// resumed run continues the same log). An empty path disables logging.
class MetricsLog {
 public:
  MetricsLog() = default;
  explicit MetricsLog(const std::string& path) : path_(path) {
    if (path_.empty()) return;
    out_.open(path_, std::ios::app);
    BINDERY_CHECK(out_.good(), IoError, "MetricsLog: cannot open ", path_, " for appending");
  }
  bool enabled() const { return out_.is_open(); }
  void write(nlohmann::json record) {
    if (!enabled()) return;
    out_ << record.dump() << '\n';
    out_.flush();
    BINDERY_CHECK(out_.good(), IoError, "MetricsLog: writing ", path_, " failed");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

/// Reads every JSON line of a MetricsLog file (for plots); a torn last line (killed writer) is skipped.
inline std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  BINDERY_CHECK(in.good(), IoError, "read_metrics: cannot open ", path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    io::check_json_depth(line, path, io::kJsonMaxDepth);  // FormatError if nested too deep
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) out.push_back(std::move(parsed));
  }
  return out;
}

}  // namespace bindery::train
