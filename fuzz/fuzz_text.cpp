// fuzz_text: UTF-8 decoding (invalid bytes included), ftfy-style cleaning and CLIP's pre-split.
#include "fuzz_target.hpp"

#include <bindery/data/text/clean.hpp>

BINDERY_FUZZ_TARGET(text) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bindery::fuzz::guarded([&] {
    const std::u32string cleaned = bindery::data::text::clean_text(text);
    (void)bindery::data::text::clip_split(cleaned);
    (void)bindery::data::text::utf8_encode(cleaned);
  });
  return 0;
}
