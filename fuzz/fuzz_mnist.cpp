// fuzz_mnist: MNIST IDX files (plain or gzipped), read as images and as labels.
#include "fuzz_target.hpp"

#include <bindery/datasets/mnist.hpp>

BINDERY_FUZZ_TARGET(mnist) {
  bindery::fuzz::with_file(data, size, ".idx", [](const std::string& path) {
    bindery::fuzz::guarded([&] { (void)bindery::data::read_idx_images(path); });
    bindery::fuzz::guarded([&] { (void)bindery::data::read_idx_images(path, 3); });
    bindery::fuzz::guarded([&] { (void)bindery::data::read_idx_labels(path); });
  });
  return 0;
}
