// fuzz_pickle: the restricted unpickler of torch.save's data.pkl, from memory.
#include "fuzz_target.hpp"

#include <bindery/io/pickle.hpp>

BINDERY_FUZZ_TARGET(pickle) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  bindery::fuzz::guarded([&] { (void)bindery::io::read_pickle(bytes, "fuzz.pth", "archive/data.pkl", 0); });
  return 0;
}
