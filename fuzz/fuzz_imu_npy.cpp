// fuzz_imu_npy: an IMU recording as .npy ((6, T), (T, 6) or (1, 6, T)) through load_imu.
#include "fuzz_target.hpp"

#include <bindery/data/imu.hpp>

BINDERY_FUZZ_TARGET(imu_npy) {
  bindery::fuzz::with_file(data, size, ".npy", [](const std::string& path) {
    bindery::data::ImuOptions options;
    options.max_resampled_steps = int64_t{1} << 18;
    const auto x = bindery::data::load_imu<float>(path, options);
    if (x.size(0) != 6 || x.size(1) != options.target_length)
      bindery::fuzz::round_trip_failed("imu_npy", "shape");
  });
  return 0;
}
