// fuzz_npy: the .npy header parser and reader; what reads is written back and must read equal.
#include "fuzz_target.hpp"

#include <bindery/io/npy.hpp>

#include <cstring>

BINDERY_FUZZ_TARGET(npy) {
  bindery::fuzz::with_file(data, size, ".npy", [](const std::string& path) {
    const auto info = bindery::io::inspect_npy(path);
    const auto tensor = bindery::io::read_npy<double>(path);
    if (tensor.shape() != info.shape)
      bindery::fuzz::round_trip_failed("npy", "inspect_npy vs read_npy shape");
    const std::string again = path + ".again.npy";
    bindery::io::write_npy(again, tensor);
    const auto reread = bindery::io::read_npy<double>(again);
    const auto a = tensor.to_vector(), b = reread.to_vector();
    if (reread.shape() != tensor.shape() || a.size() != b.size() ||
        (!a.empty() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) != 0))
      bindery::fuzz::round_trip_failed("npy", "write_npy then read_npy");
  });
  return 0;
}
