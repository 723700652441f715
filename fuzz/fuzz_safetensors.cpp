// fuzz_safetensors: header size, JSON header, entries and offsets, then every tensor's bytes.
#include "fuzz_target.hpp"

#include <bindery/io/safetensors.hpp>

BINDERY_FUZZ_TARGET(safetensors) {
  bindery::fuzz::with_file(data, size, ".safetensors", [](const std::string& path) {
    const auto file = bindery::io::SafetensorsFile::open(path);
    for (const auto& t : file.tensors()) {
      bindery::fuzz::guarded([&] {  // each tensor alone: a conversion refused for one is not the end
        const auto loaded = file.load<double>(t.name);
        const auto read = file.read<double>(t.name);
        if (loaded.shape() != read.shape())
          bindery::fuzz::round_trip_failed("safetensors", "load vs read shape");
      });
    }
  });
  return 0;
}
