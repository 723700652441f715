// IMU input: layouts, the length policy (centre crop, padding), rate conversion, CSV parsing and its
// errors.
#include "test_util.hpp"

#include <bindery/data/imu.hpp>
#include <bindery/io/npy.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

using bindery::Cpu;
using bindery::Shape;
using bindery::Tensor;
using bindery::data::imu_from_samples;
using bindery::data::ImuOptions;
using bindery::data::ImuPad;
using bindery::data::ImuReport;
using bindery::data::load_imu;

namespace {

std::string scratch(const std::string& name) {
  static const auto dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("bindery_imu_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return (dir / name).string();
}

std::string write_text(const std::string& name, const std::string& content) {
  const std::string path = scratch(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

/// (6, n) with value c * 10000 + t at channel c, step t.
Tensor<float, Cpu> ramp(int64_t n) {
  std::vector<float> v(static_cast<size_t>(6 * n));
  for (int64_t c = 0; c < 6; ++c)
    for (int64_t t = 0; t < n; ++t) v[static_cast<size_t>(c * n + t)] = static_cast<float>(c * 10000 + t);
  return Tensor<float, Cpu>::from_vector(v, Shape{6, n});
}

}  // namespace

TEST_CASE("imu: 2000 steps at 400 Hz pass through unchanged, in every layout", "[data][imu]") {
  const auto x = ramp(2000);
  ImuReport report;
  CHECK(imu_from_samples(x, {}, &report).to_vector() == x.to_vector());
  CHECK(report.warnings.empty());
  CHECK(imu_from_samples(x.transpose(0, 1).contiguous()).to_vector() == x.to_vector());  // (T, 6)
  CHECK(imu_from_samples(x.unsqueeze(0)).to_vector() == x.to_vector());                  // (1, 6, T)
  // .npy in both layouts, float64 on disk.
  const std::string channels_first = scratch("imu_6xT.npy"), time_first = scratch("imu_Tx6.npy");
  bindery::io::write_npy(channels_first, x.cast<double>());
  bindery::io::write_npy(time_first, x.transpose(0, 1).contiguous());
  CHECK(load_imu(channels_first).to_vector() == x.to_vector());
  CHECK(load_imu(time_first).to_vector() == x.to_vector());
}

TEST_CASE("imu: longer recordings are centre-cropped, shorter ones padded", "[data][imu]") {
  ImuReport report;
  const auto cropped = imu_from_samples(ramp(2101), {}, &report);  // 101 extra: drop 50 first, 51 last
  REQUIRE(cropped.shape() == Shape{6, 2000});
  CHECK(cropped.at({0, 0}) == 50.0f);
  CHECK(cropped.at({5, 1999}) == 52049.0f);
  REQUIRE(report.warnings.size() == 2);  // unknown rate, crop
  CHECK(report.warnings[1].find("cropped to the centred 2000 (from step 50)") != std::string::npos);

  const auto zeros = imu_from_samples(ramp(1500));
  CHECK(zeros.at({2, 1499}) == 21499.0f);
  CHECK(zeros.at({2, 1500}) == 0.0f);
  ImuOptions repeat;
  repeat.pad = ImuPad::kRepeatLastEnd;
  const auto repeated = imu_from_samples(ramp(1500), repeat);
  CHECK(repeated.at({2, 1999}) == 21499.0f);
  ImuOptions centre;
  centre.pad = ImuPad::kCentreZeros;
  const auto centred = imu_from_samples(ramp(1500), centre);
  CHECK(centred.at({1, 249}) == 0.0f);
  CHECK(centred.at({1, 250}) == 10000.0f);
  CHECK(centred.at({1, 1749}) == 11499.0f);
  CHECK(centred.at({1, 1750}) == 0.0f);
}

TEST_CASE("imu: other rates are resampled to 400 Hz first", "[data][imu]") {
  // 5 s of a 3 Hz sine at 200 Hz -> 2000 steps at 400 Hz, still the same sine.
  std::vector<double> v(6 * 1000);
  for (int64_t c = 0; c < 6; ++c)
    for (int64_t t = 0; t < 1000; ++t)
      v[static_cast<size_t>(c * 1000 + t)] = std::sin(2 * M_PI * 3.0 * t / 200.0 + c);
  ImuOptions options;
  options.sample_rate = 200;
  ImuReport report;
  const auto y = imu_from_samples(Tensor<double, Cpu>::from_vector(v, Shape{6, 1000}), options, &report);
  REQUIRE(y.shape() == Shape{6, 2000});
  CHECK(report.resampled_steps == 2000);
  CHECK(report.warnings.at(0).find("resampled from 200 Hz to 400 Hz") != std::string::npos);
  double worst = 0.0;
  for (int64_t c = 0; c < 6; ++c)
    for (int64_t t = 100; t < 1900; ++t)
      worst = std::max(worst, std::fabs(y.at({c, t}) - std::sin(2 * M_PI * 3.0 * t / 400.0 + c)));
  CHECK(worst < 2e-3);
  // A non-integer rate: linear interpolation on the 400 Hz grid.
  options.sample_rate = 133.5;
  const auto z = imu_from_samples(ramp(668).cast<double>(), options, &report);
  CHECK(report.resampled_steps == 2002);  // ceil(668 * 400 / 133.5), then the centred 2000 (from step 1)
  CHECK(z.at({0, 0}) == Approx(133.5 / 400.0));
}

TEST_CASE("imu: CSV with header, comments, time column", "[data][imu]") {
  std::string csv = "# phone IMU\ntime,ax,ay,az,gx,gy,gz\n";
  for (int t = 0; t < 1000; ++t) {
    csv += std::to_string(t / 200.0) + "," + std::to_string(t) + ",1,2,3,4," + std::to_string(-t) + "\r\n";
  }
  ImuReport report;
  const auto y = load_imu(write_text("imu.csv", csv), {}, &report);
  REQUIRE(y.shape() == Shape{6, 2000});
  CHECK(report.source_steps == 1000);
  CHECK(report.source_rate == 200.0);  // from the timestamps
  CHECK(y.at({1, 1000}) == Approx(1.0).margin(1e-4));
  // 6 columns, whitespace separated, no header, rate unknown -> 400 Hz assumed.
  std::string plain;
  for (int t = 0; t < 2000; ++t) plain += std::to_string(t) + " 0 0 9.81 0 0\n";
  const auto p = load_imu(write_text("imu.txt", plain));
  CHECK(p.at({0, 1234}) == 1234.0f);
  CHECK(p.at({3, 5}) == 9.81f);
}

TEST_CASE("imu: malformed inputs -> typed errors naming file and line", "[data][imu][malformed]") {
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(write_text("bad_cell.csv", "1,2,3,4,5,6\n1,2,x,4,5,6\n")),
                                  bindery::FormatError, "bad_cell.csv", "line 2", "'x' is not a number");
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(write_text("ragged.csv", "1,2,3,4,5,6\n1,2,3,4,5\n")),
                                  bindery::FormatError, "ragged.csv", "line 2", "5 columns");
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(write_text("five.csv", "1,2,3,4,5\n")), bindery::FormatError,
                                  "five.csv", "5 columns (6: acc xyz gyro xyz");
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(write_text("empty.csv", "# nothing\n\n")), bindery::FormatError,
                                  "empty.csv", "no data rows");
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(write_text("time.csv", "0,1,2,3,4,5,6\n0,1,2,3,4,5,6\n")),
                                  bindery::FormatError, "time.csv", "timestamps do not increase");
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(write_text("nan.csv", "1,2,3,4,5,nan\n")), bindery::ValueError,
                                  "nan.csv", "NaN or infinite");
  BINDERY_REQUIRE_THROWS_WITH_ALL(imu_from_samples(Tensor<float, Cpu>::zeros(Shape{5, 100})),
                                  bindery::ShapeError, "(5, 100)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(scratch("missing.csv")), bindery::IoError, "missing.csv");
}

TEST_CASE("imu: zero-size .npy recordings are typed errors, not a stack overflow (issue 18, 1)",
          "[data][imu][malformed][hardening]") {
  // Reading a (2, 0) .npy reshaped it, which recursed until the stack overflowed.
  for (const Shape& shape : {Shape{2, 0}, Shape{0, 6}, Shape{6, 0}, Shape{1, 6, 0}}) {
    const std::string path = scratch("zero.npy");
    bindery::io::write_npy(path, Tensor<float, Cpu>::zeros(shape));
    INFO(shape);
    REQUIRE_THROWS_AS(load_imu(path), bindery::ShapeError);
  }
}

TEST_CASE("imu: rates from timestamps cannot overflow or allocate without bound (issue 18, 6-7)",
          "[data][imu][malformed][hardening]") {
  // Timestamps 0 and 1e300 s: 1e-300 Hz; converting ceil(n * 400 / rate) to int64 overflowed.
  BINDERY_REQUIRE_THROWS_WITH_ALL(load_imu(write_text("far.csv", "0,1,2,3,4,5,6\n1e300,1,2,3,4,5,6\n")),
                                  bindery::ValueError, "far.csv", "ImuOptions::max_resampled_steps",
                                  "4194304");
  // 2 steps over 1000 s (0.001 Hz) are 800,000 steps at 400 Hz: within the default, over a lower
  // limit.
  ImuOptions small;
  small.max_resampled_steps = 100000;
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      load_imu(write_text("slow.csv", "0,1,2,3,4,5,6\n1000,1,2,3,4,5,6\n"), small), bindery::ValueError,
      "slow.csv", "800000 steps", "100000 (ImuOptions::max_resampled_steps)");
  REQUIRE(load_imu(write_text("slow.csv", "0,1,2,3,4,5,6\n1000,1,2,3,4,5,6\n")).shape() == Shape{6, 2000});
  // An integer rate whose filter bank is too large is refused before it is built.
  ImuOptions odd;
  odd.sample_rate = 999983;
  BINDERY_REQUIRE_THROWS_WITH_ALL(imu_from_samples(ramp(10), odd), bindery::ValueError,
                                  "ResampleOptions::max_kernel_coefficients");
  ImuOptions infinite;
  infinite.sample_rate = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_AS(imu_from_samples(ramp(10), infinite), bindery::ValueError);
  // Ordinary rates are unaffected.
  ImuOptions hundred;
  hundred.sample_rate = 100;
  REQUIRE(imu_from_samples(ramp(500), hundred).shape() == Shape{6, 2000});
}
