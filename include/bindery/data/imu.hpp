// bindery/data/imu.hpp — IMU recordings to ImageBind's IMU input: (6, 2000) float.
//
// The reference's IMU encoder reads 6 channels (accelerometer x y z, gyroscope x y z) of 2000 steps:
// Ego4D's 5 s windows at 400 Hz, cut into 250 patches of 8 steps; only T = 2000 fits its position
// embedding. The reference ships no IMU loader and applies no normalization, so values go through
// unchanged: supply the units of the training data (Ego4D's raw accelerometer and gyroscope streams).
//
// Policy for other inputs (ImuOptions):
//   - layout: (6, T) or (T, 6) (.npy), a (1, 6, T) batch of one, or CSV rows of 6 values (7 when the
//     first column is a timestamp in seconds); a (6, 6) array is read as (channels, time);
//   - rate: when the rate is known (options.sample_rate, or from a CSV time column) and differs from
//     400 Hz, resample first — integer rates with the windowed-sinc resampler of data/resample.hpp
//     (as the audio path), other rates by linear interpolation on the 400 Hz grid;
//   - length: longer than 2000 -> the centred window of 2000 (floor((T - 2000) / 2) dropped first);
//     shorter -> padded at the end, with zeros (default) or by repeating the last sample (keeps the
//     gravity component of the accelerometer level), or centred with ImuPad::kCentreZeros.
// Every change is reported in ImuReport::warnings.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/resample.hpp"
#include "bindery/data/wav.hpp"
#include "bindery/io/file.hpp"
#include "bindery/io/npy.hpp"

namespace bindery::data {

/// How a recording shorter than the target length is padded.
enum class ImuPad { kZerosEnd, kRepeatLastEnd, kCentreZeros };

struct ImuOptions {
  double sample_rate = 0.0;      // Hz of the input; 0: unknown (taken as target_rate unless a CSV has times)
  double target_rate = 400.0;    // the reference's rate (2000 steps = 5 s)
  int64_t target_length = 2000;  // steps the IMU encoder reads
  ImuPad pad = ImuPad::kZerosEnd;
  /// Most steps the rate conversion may produce (before the crop to target_length). A rate read
  /// from CSV timestamps (0 and 1e300 s: 1e-300 Hz) would otherwise ask for an astronomical length;
  /// exceeding it throws ValueError naming this limit. Default 2^22 (2.9 hours at 400 Hz; 200 MB).
  int64_t max_resampled_steps = int64_t{1} << 22;
  /// The windowed-sinc resampler's options for integer rates, its filter-bank limit included.
  ResampleOptions resample{};
};

struct ImuReport {
  int64_t source_steps = 0;  // T as read
  double source_rate = 0.0;  // Hz used (given, from timestamps, or assumed)
  int64_t resampled_steps = 0;
  std::vector<std::string> warnings;
};

namespace detail {

/// x (6, n) channel-major -> (6, m) on the target grid by linear interpolation (non-integer rates).
inline std::vector<double> imu_linear_resample(const std::vector<double>& x, int64_t n, double rate,
                                               double target, int64_t& m) {
  // ceil(n * target / rate) steps, as the sinc path; past the last input step the last value holds.
  m = static_cast<int64_t>(std::ceil(static_cast<double>(n) * target / rate));
  std::vector<double> y(static_cast<size_t>(6 * m));
  for (int64_t j = 0; j < m; ++j) {
    const double t = static_cast<double>(j) * rate / target;  // position in input steps
    const auto i = std::min<int64_t>(static_cast<int64_t>(t), n - 1);
    const double f = t - static_cast<double>(i);
    for (int64_t c = 0; c < 6; ++c) {
      const double a = x[static_cast<size_t>(c * n + i)],
                   b = x[static_cast<size_t>(c * n + std::min(i + 1, n - 1))];
      y[static_cast<size_t>(c * m + j)] = a + (b - a) * f;
    }
  }
  return y;
}

}  // namespace detail

/// IMU samples -> (6, target_length). samples: (6, T), (T, 6) or (1, 6, T), any T >= 1.
template <class T = float, class B = Cpu>
Tensor<T, B> imu_from_samples(const Tensor<T, B>& samples, const ImuOptions& options = {},
                              ImuReport* report = nullptr, const std::string& name = "imu") {
  static_assert(std::is_floating_point_v<T>, "imu_from_samples: T must be float or double");
  ImuReport local;
  ImuReport& r = report != nullptr ? *report : local;
  r = ImuReport{};
  Tensor<T, B> x = samples;
  if (x.defined() && x.rank() == 3 && x.size(0) == 1) x = x.select(0, 0);
  BINDERY_CHECK(x.defined() && x.rank() == 2 && (x.size(0) == 6 || x.size(1) == 6), ShapeError, "load_imu(",
                name, "): samples of shape ", samples.shape(), " must be (6, T), (T, 6) or (1, 6, T)");
  if (x.size(0) != 6) x = x.transpose(0, 1);  // (T, 6) -> (6, T)
  const int64_t n = x.size(1);
  BINDERY_CHECK(n >= 1, ShapeError, "load_imu(", name, "): samples of shape ", samples.shape(),
                " hold no time step");
  BINDERY_CHECK(options.target_length >= 1 && options.target_rate > 0.0 && options.sample_rate >= 0.0 &&
                    std::isfinite(options.target_rate) && std::isfinite(options.sample_rate),
                ValueError, "load_imu(", name, "): target_length ", options.target_length, ", target_rate ",
                options.target_rate, ", sample_rate ", options.sample_rate);
  r.source_steps = n;
  r.source_rate = options.sample_rate > 0.0 ? options.sample_rate : options.target_rate;
  if (options.sample_rate <= 0.0 && n != options.target_length)
    r.warnings.push_back(
        ::bindery::detail::concat(name, ": rate unknown, taken as ", options.target_rate, " Hz"));
  for (const T v : x.contiguous().to_vector())
    BINDERY_CHECK(std::isfinite(static_cast<double>(v)), ValueError, "load_imu(", name, "): a value is ", v,
                  " (NaN or infinite): fill gaps before loading");

  // 1. rate
  Tensor<T, B> y = x.contiguous();
  if (r.source_rate != options.target_rate) {
    const double rate = r.source_rate, target = options.target_rate;
    // The output length in double before any conversion to int64 (which overflows for a rate of
    // 1e-300 Hz) or any allocation: both paths produce ceil(n * target / rate) steps.
    const double steps = std::ceil(static_cast<double>(n) * target / rate);
    BINDERY_CHECK(
        steps <= static_cast<double>(options.max_resampled_steps), ValueError, "load_imu(", name, "): ", n,
        " steps at ", rate, " Hz resample to ",
        steps < 9e18 ? std::to_string(static_cast<int64_t>(steps)) : ::bindery::detail::concat(steps),
        " steps at ", target, " Hz, over the limit of ", options.max_resampled_steps,
        " (ImuOptions::max_resampled_steps); check the sample rate (or the CSV's timestamps)");
    if (rate == std::floor(rate) && target == std::floor(target) && rate < 1e9 && target < 1e9) {
      y = resample(y, static_cast<int64_t>(rate), static_cast<int64_t>(target), options.resample);
    } else {
      const std::vector<T> host = y.to_vector();
      int64_t m = 0;
      const std::vector<double> out =
          detail::imu_linear_resample(std::vector<double>(host.begin(), host.end()), n, rate, target, m);
      y = Tensor<T, B>::from_vector(std::vector<T>(out.begin(), out.end()), Shape{6, m});
    }
    r.warnings.push_back(::bindery::detail::concat(name, ": resampled from ", rate, " Hz to ", target,
                                                   " Hz (", n, " -> ", y.size(1), " steps)"));
  }
  r.resampled_steps = y.size(1);

  // 2. length
  const int64_t m = y.size(1), target = options.target_length;
  if (m == target) return y;
  const std::vector<T> host = y.to_vector();
  std::vector<T> out(static_cast<size_t>(6 * target), T(0));
  if (m > target) {
    const int64_t start = (m - target) / 2;
    for (int64_t c = 0; c < 6; ++c)
      std::copy_n(host.begin() + c * m + start, target, out.begin() + c * target);
    r.warnings.push_back(::bindery::detail::concat(name, ": ", m, " steps cropped to the centred ", target,
                                                   " (from step ", start, ")"));
  } else {
    const int64_t offset = options.pad == ImuPad::kCentreZeros ? (target - m) / 2 : 0;
    for (int64_t c = 0; c < 6; ++c) {
      std::copy_n(host.begin() + c * m, m, out.begin() + c * target + offset);
      if (options.pad == ImuPad::kRepeatLastEnd)
        std::fill(out.begin() + c * target + m, out.begin() + (c + 1) * target,
                  host[static_cast<size_t>(c * m + m - 1)]);
    }
    const char* how = options.pad == ImuPad::kZerosEnd        ? "zeros at the end"
                      : options.pad == ImuPad::kRepeatLastEnd ? "the last sample repeated"
                                                              : "zeros on both sides";
    r.warnings.push_back(
        ::bindery::detail::concat(name, ": ", m, " steps padded to ", target, " with ", how));
  }
  return Tensor<T, B>::from_vector(out, Shape{6, target});
}

namespace detail {

/// CSV of 6 columns (or 7: time in seconds first). Separators: comma, semicolon, tab or spaces; an
/// optional header line; '#' comments and blank lines skipped. -> values (6, T) and, with times,
/// the rate (steps - 1) / (t_last - t_first).
inline std::vector<double> read_imu_csv(const std::string& path, int64_t& steps, double& rate_from_times) {
  const std::vector<unsigned char> bytes = read_whole_file(path);
  const std::string_view content(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::vector<std::vector<double>> rows;
  int64_t columns = -1;
  bool header_seen = false;
  size_t pos = 0;
  int64_t line_number = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    const size_t line_start = pos;
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    std::vector<double> values;
    std::string_view bad_cell;
    bool numeric = true;
    for (size_t i = first; i < line.size() && numeric;) {
      size_t j = i;
      while (j < line.size() && line[j] != ',' && line[j] != ';' && line[j] != '\t' && line[j] != ' ') ++j;
      const std::string_view cell = line.substr(i, j - i);
      double v = 0.0;
      const auto [ptr, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
      numeric = !cell.empty() && ec == std::errc() && ptr == cell.data() + cell.size();
      if (!numeric) bad_cell = cell;
      values.push_back(v);
      i = j;
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;  // spaces around a separator
      if (i < line.size() && (line[i] == ',' || line[i] == ';')) ++i;
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    }
    if (!numeric) {
      if (rows.empty() && !header_seen) {  // one header line before the data is allowed
        header_seen = true;
        continue;
      }
      throw io::format_error(path, "imu csv", line_start, "line ", line_number, ": '", bad_cell,
                             "' is not a number");
    }
    if (columns < 0) {
      columns = static_cast<int64_t>(values.size());
      if (columns != 6 && columns != 7)
        throw io::format_error(path, "imu csv", line_start, "line ", line_number, ": ", columns,
                               " columns (6: acc xyz gyro xyz, or 7: time in s first)");
    } else if (static_cast<int64_t>(values.size()) != columns) {
      throw io::format_error(path, "imu csv", line_start, "line ", line_number, ": ", values.size(),
                             " columns, the first data line had ", columns);
    }
    rows.push_back(std::move(values));
  }
  if (rows.empty()) throw io::format_error(path, "imu csv", 0, "no data rows");
  steps = static_cast<int64_t>(rows.size());
  const int64_t skip = columns == 7 ? 1 : 0;
  rate_from_times = 0.0;
  if (skip == 1 && steps > 1) {
    const double span = rows.back()[0] - rows.front()[0];
    if (!(span > 0.0))
      throw io::format_error(path, "imu csv", 0, "timestamps do not increase (span ", span, " s)");
    rate_from_times = static_cast<double>(steps - 1) / span;
    // Timestamps printed with limited digits: snap a rate within 1e-6 of an integer to it.
    if (std::fabs(rate_from_times - std::round(rate_from_times)) < 1e-6 * rate_from_times)
      rate_from_times = std::round(rate_from_times);
  }
  std::vector<double> out(static_cast<size_t>(6 * steps));
  for (int64_t t = 0; t < steps; ++t)
    for (int64_t c = 0; c < 6; ++c)
      out[static_cast<size_t>(c * steps + t)] = rows[static_cast<size_t>(t)][static_cast<size_t>(c + skip)];
  return out;
}

}  // namespace detail

/// Reads an IMU recording (.npy, or .csv / .txt) -> (6, 2000) with the policy above.
template <class T = float, class B = Cpu>
Tensor<T, B> load_imu(const std::string& path, const ImuOptions& options = {}, ImuReport* report = nullptr) {
  const bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  if (npy) return imu_from_samples<T, B>(io::read_npy<T, B>(path), options, report, path);
  int64_t steps = 0;
  double rate = 0.0;
  const std::vector<double> values = detail::read_imu_csv(path, steps, rate);
  ImuOptions effective = options;
  if (effective.sample_rate <= 0.0 && rate > 0.0) effective.sample_rate = rate;
  return imu_from_samples<T, B>(
      Tensor<T, B>::from_vector(std::vector<T>(values.begin(), values.end()), Shape{6, steps}), effective,
      report, path);
}

}  // namespace bindery::data
