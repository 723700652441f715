// fuzz_checkpoint: a training checkpoint (safetensors + JSON manifest with CRC-32s) through
// verify_checkpoint, which reads the manifest and every tensor.
#include "fuzz_target.hpp"

#include <bindery/train/checkpoint.hpp>

BINDERY_FUZZ_TARGET(checkpoint) {
  bindery::fuzz::with_file(data, size, ".safetensors",
                           [](const std::string& path) { (void)bindery::train::verify_checkpoint(path); });
  return 0;
}
