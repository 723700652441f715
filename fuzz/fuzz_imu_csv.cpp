// fuzz_imu_csv: an IMU recording as CSV text (header, comments, time column) through load_imu:
// parse, rate from the timestamps, resample to 400 Hz, crop/pad to 2000 steps.
#include "fuzz_target.hpp"

#include <bindery/data/imu.hpp>

BINDERY_FUZZ_TARGET(imu_csv) {
  bindery::fuzz::with_file(data, size, ".csv", [](const std::string& path) {
    bindery::data::ImuOptions options;
    options.max_resampled_steps = int64_t{1} << 18;  // keeps one input fast; the default is tested
    const auto x = bindery::data::load_imu<float>(path, options);
    if (x.size(0) != 6 || x.size(1) != options.target_length)
      bindery::fuzz::round_trip_failed("imu_csv", "shape");
  });
  return 0;
}
