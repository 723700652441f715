// fuzz_imu_csv: an IMU recording as CSV text (header, comments, time column) through load_imu:
// parse, rate from the timestamps, resample to 400 Hz, crop/pad (to 64 steps here).
#include "fuzz_target.hpp"

#include <bindery/data/imu.hpp>

BINDERY_FUZZ_TARGET(imu_csv) {
  bindery::fuzz::with_file(data, size, ".csv", [](const std::string& path) {
    // Short outputs keep one input fast (the resampling, crop and pad arithmetic do not depend on
    // the lengths; the defaults are tested in tests/data): 64 steps, at most 4096 resampled, and a
    // filter bank of at most 2^18 coefficients (two timestamps 101 us apart give 9,901 -> 400 Hz,
    // a bank of 4 million: 2.4 s under ASan, within the default limit of 2^24).
    bindery::data::ImuOptions options;
    options.target_length = 64;
    options.max_resampled_steps = int64_t{1} << 12;
    options.resample.max_kernel_coefficients = int64_t{1} << 18;
    const auto x = bindery::data::load_imu<float>(path, options);
    if (x.size(0) != 6 || x.size(1) != options.target_length)
      bindery::fuzz::round_trip_failed("imu_csv", "shape");
  });
  return 0;
}
