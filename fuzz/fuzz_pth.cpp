// fuzz_pth: a torch.save archive (stored zip + restricted pickle + storages) through load_pth.
#include "fuzz_target.hpp"

#include <bindery/io/pth.hpp>

BINDERY_FUZZ_TARGET(pth) {
  bindery::fuzz::with_file(data, size, ".pth", [](const std::string& path) {
    const auto infos = bindery::io::inspect_pth(path);
    const auto named = bindery::io::load_pth<float>(path);
    // Without a key filter both list every tensor of the state_dict.
    if (named.size() != infos.size())
      bindery::fuzz::round_trip_failed("pth", "inspect_pth vs load_pth count");
    for (const auto& [name, tensor] : named) (void)tensor.to_vector();  // touch every view's elements
  });
  return 0;
}
