// fuzz_tokenizer: CLIP's BPE tokenizer (cleaning, split, byte-level BPE, the word cut) on any bytes.
// The vocabulary is the shared bpe_simple_vocab_16e6.txt.gz, read in place: BINDERY_FUZZ_BPE in the
// environment, else the path CMake passes (BINDERY_SHARED_DATA/imagebind_assets).
#include "fuzz_target.hpp"

#include <bindery/data/text/tokenizer.hpp>

namespace {

const bindery::data::ClipTokenizer& fuzz_tokenizer() {
  static const bindery::data::ClipTokenizer tokenizer = [] {
    const char* env = std::getenv("BINDERY_FUZZ_BPE");
    const std::string path = env != nullptr && *env != '\0' ? env : BINDERY_FUZZ_BPE_DEFAULT;
    try {
      return bindery::data::ClipTokenizer(path);
    } catch (const bindery::Error& e) {
      std::fprintf(stderr, "fuzz_tokenizer: cannot load the BPE vocabulary (set BINDERY_FUZZ_BPE): %s\n",
                   e.what());
      std::exit(2);
    }
  }();
  return tokenizer;
}

}  // namespace

BINDERY_FUZZ_TARGET(tokenizer) {
  const auto& tokenizer = fuzz_tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bindery::fuzz::guarded([&] {
    const auto ids = tokenizer.tokenize_one(text);
    if (static_cast<int64_t>(ids.size()) != bindery::data::ClipTokenizer::kContextLength)
      bindery::fuzz::round_trip_failed("tokenizer", "tokenize_one length");
    for (int64_t id : ids)
      if (id < 0 || id >= tokenizer.vocab_size())
        bindery::fuzz::round_trip_failed("tokenizer", "id out of range");
  });
  return 0;
}
