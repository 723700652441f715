// fuzz_zip: the stored-zip reader (end records, zip64, central directory, local headers, CRC-32).
#include "fuzz_target.hpp"

#include <bindery/io/zip.hpp>

BINDERY_FUZZ_TARGET(zip) {
  bindery::fuzz::with_file(data, size, ".zip", [](const std::string& path) {
    const bindery::io::ZipReader zip(bindery::io::File::open(path));
    for (const auto& entry : zip.entries()) {
      if (zip.find(entry.name) == nullptr) bindery::fuzz::round_trip_failed("zip", "an entry find() misses");
      bindery::fuzz::guarded([&] { (void)zip.read_small(entry, int64_t{1} << 20); });
    }
  });
  return 0;
}
