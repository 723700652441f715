// ftfy's mojibake repair (data/text/mojibake.hpp) against ftfy 6.3 itself: is_bad, fix_encoding and
// fix_text on 818 generated strings (tests/reference/text/mojibake.jsonl, written by
// tests/reference/make_audio_text_fixtures.py: strings each of the 37 badness patterns matches and
// near misses, random strings of the classified characters, UTF-8 with altered bytes read with each
// codec); its steps by hand; and random input. The tokenizer corpus (test_tokenizer.cpp) holds 320
// more mojibake strings end to end.
#include "test_util.hpp"

#include <bindery/data/text/clean.hpp>

#include <nlohmann/json.hpp>

#include <fstream>

namespace text = bindery::data::text;
namespace mojibake = bindery::data::text::detail::mojibake;

namespace {

std::string fix_encoding(const std::string& s) {
  return text::utf8_encode(text::ftfy_fix_encoding(text::utf8_decode(s)));
}
bool is_bad(const std::string& s) {
  return text::ftfy_is_bad(text::utf8_decode(s));
}
std::optional<std::string> decode_variants(const std::string& bytes) {
  const auto decoded = mojibake::decode_utf8_variants(bytes);
  if (!decoded) return std::nullopt;
  return text::utf8_encode(*decoded);
}

}  // namespace

TEST_CASE("mojibake: is_bad, fix_encoding, fix_text as ftfy on generated strings",
          "[data][text][reference]") {
  std::ifstream in(std::string(BINDERY_TEST_DATA) + "/reference/text/mojibake.jsonl");
  REQUIRE(in.good());
  size_t count = 0, bad = 0, same_bad = 0, same_encoding = 0, same_fixed = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto r = nlohmann::json::parse(line);
    const std::string input = r.at("text");
    // "encoding" and "fixed" are stored only where they differ from the input and from "encoding".
    const std::string encoding = r.contains("encoding") ? r.at("encoding").get<std::string>() : input;
    const std::string fixed = r.contains("fixed") ? r.at("fixed").get<std::string>() : encoding;
    const bool expected_bad = r.at("bad").get<int>() != 0;
    const std::string our_encoding = fix_encoding(input);
    const std::string our_fixed = text::utf8_encode(text::ftfy_fix_text(text::utf8_decode(input)));
    ++count;
    bad += expected_bad;
    same_bad += is_bad(input) == expected_bad;
    same_encoding += our_encoding == encoding;
    same_fixed += our_fixed == fixed;
    INFO("text: " << input << "\nfix_encoding (ftfy): " << encoding << "\nfix_encoding (ours): "
                  << our_encoding << "\nfix_text (ftfy): " << fixed << "\nfix_text (ours): " << our_fixed);
    CHECK(is_bad(input) == expected_bad);
    CHECK(our_encoding == encoding);
    CHECK(our_fixed == fixed);
  }
  WARN("mojibake probes: is_bad " << same_bad << " / " << count << " (" << bad << " bad), fix_encoding "
                                  << same_encoding << " / " << count << ", fix_text " << same_fixed << " / "
                                  << count);
  CHECK(count >= 800);
  CHECK(bad >= 400);
}

TEST_CASE("mojibake: the repair step by step, by hand", "[data][text]") {
  // Latin-1 / Windows-1252 read of UTF-8, and text left alone.
  CHECK(fix_encoding("sÃ³") == "só");
  CHECK(fix_encoding("Ã©tÃ©") == "été");
  CHECK(fix_encoding("Ãlvaro PÉREZ") == "Ãlvaro PÉREZ");
  CHECK_FALSE(is_bad("Ãlvaro PÉREZ naïve café, 1° C, 2 × 3"));
  CHECK(is_bad("Ã©"));        // the pattern [ÂÃÎÐ][...©...]
  CHECK(is_bad("\xC2\x85"));  // any C1 control
  CHECK(fix_encoding("plain ASCII text") == "plain ASCII text");
  // Twice garbled: each step undoes one layer.
  CHECK(fix_encoding("The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows.") ==
        "The Mona Lisa doesn’t have eyebrows.");
  // restore_byte_a0: "Ã " stands for "à " (byte A0 became a space), but not before Portuguese "s ".
  CHECK(fix_encoding("voilÃ le travail") == "voilà le travail");
  CHECK(fix_encoding("Ã s vezes Ã quele") == "às vezes àquele");
  // replace_lossy_sequences: a UTF-8 sequence with a byte lost to U+FFFD.
  CHECK(fix_encoding("â€œ like this â€\xEF\xBF\xBD") == "“ like this \xEF\xBF\xBD");
  // Other codecs: MacRoman, CP437, Windows-1251.
  CHECK(fix_encoding("caf‚àö¬©") == "café");
  CHECK(fix_encoding("├⌐t├⌐") == "été");
  CHECK(fix_encoding("вЂ” dash") == "— dash");
  // CESU-8 surrogate pairs and Java's C0 80 null; ftfy's quirk: C0 before a final "\n" is a null too.
  CHECK(fix_encoding("Ã©tÃ© \xC3\xAD\xC2\xA0\xC2\xBD\xC3\xAD\xC2\xB8\xC2\x80") == "été 😀");
  CHECK(fix_encoding("Ã©tÃ© À\xC2\x80") == std::string("été \0", 7));
  CHECK(fix_encoding("Ã©tÃ© À\n") == std::string("été \0", 7));
  CHECK(text::utf8_encode(text::ftfy_fix_text(text::utf8_decode("Ã©tÃ© À\nnext"))) == "été next");
  // decode_inconsistent_utf8: mojibake next to text that no codec can encode.
  CHECK(fix_encoding("日本語 Ã©tÃ©") == "日本語 été");
  CHECK(fix_encoding("✔ ok âœ” fixed") == "✔ ok ✔ fixed");
  // Latin-1 C1 controls meant as Windows-1252.
  CHECK(fix_encoding("caf\xC3\xA9\xC2\x92s") == "café’s");
}

TEST_CASE("mojibake: byte-level helpers", "[data][text]") {
  CHECK(decode_variants("a\xC3\xA9") == "aé");
  CHECK(decode_variants("\xC0\x80") == std::string("\0", 1));
  CHECK(decode_variants("\xC0\n") == std::string("\0", 1));  // final "\n": ftfy's regex `$`
  CHECK_FALSE(decode_variants("\xC0\nx"));
  CHECK(decode_variants("\xED\xA0\xBD\xED\xB8\x80") == "😀");
  CHECK_FALSE(decode_variants("\xED\xA0\x80"));  // a lone surrogate
  CHECK_FALSE(decode_variants("\xE0\x80\x80"));  // overlong
  CHECK_FALSE(decode_variants("\xC3"));          // truncated
  CHECK(decode_variants("\xED\x9F\xBF") == "\xED\x9F\xBF");
  // "C3 20 la": A0 inserted; "C3 20 s ": kept for Portuguese "às", whose space then becomes A0.
  CHECK(mojibake::restore_byte_a0("\xC3 la \xC3 s \xE2\x80 x") == "\xC3\xA0 la \xC3\xA0s \xE2\x80\xA0x");
  CHECK(mojibake::replace_lossy_sequences("\xE2\x80\x1A \xC3? \x1A") ==
        "\xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD");
  CHECK(mojibake::encode(U"é€", 0) == std::nullopt);  // Latin-1 has no €
  CHECK(mojibake::encode(U"é€", 1) == "\xE9\x80");    // sloppy Windows-1252
  CHECK(mojibake::encode(U"\uFFFD", 1) == "\x1A");    // the sloppy codecs' lost byte
  CHECK(mojibake::encode(U"\x1A", 1) == std::nullopt);
}

TEST_CASE("mojibake: generated tables", "[data][text]") {
  // bad_at's shortcut: every literal second code point of a badness pattern is classified.
  for (char32_t c : mojibake::kBadnessSecondLiterals) {
    INFO("U+" << std::hex << static_cast<uint32_t>(c));
    CHECK(mojibake::classes_of(c) != 0);
  }
  CHECK(mojibake::classes_of(U'a') == 0);
  CHECK(mojibake::classes_of(U' ') == bindery::data::tables::kMbContinuation);  // may stand for byte A0
  CHECK((mojibake::classes_of(0xFFFD) & bindery::data::tables::kMbBad) != 0);
  CHECK(mojibake::classes_of(0x1F355) == 0);
  // The codecs in ftfy's order; Windows-1252's byte 80 is the euro sign, CP437's byte 80 is Ç.
  REQUIRE(std::size(bindery::data::tables::kMojibakeCodecs) == 10);
  CHECK(bindery::data::tables::kMojibakeCodecs[0].name == "latin-1");
  CHECK(bindery::data::tables::kMojibakeCodecs[1].high[0] == 0x20AC);
  CHECK(bindery::data::tables::kMojibakeCodecs[9].high[0] == 0xC7);
}

TEST_CASE("mojibake: random code points never crash and stay valid", "[data][text][malformed]") {
  // Code points that mojibake is made of, ASCII, and a few others.
  std::u32string pool = U"abc xyz.,?!\n\t'\"_ÃÂâ€œ™©®°±²³µ¼½¾ÀÉÎÐØÙàéîðøùŒœŠšŸžƒˆ˜–—‘’“”•…‹›";
  pool += U"ВГРСвЂўβΒΓΞΟā√≈‚Ä├⌐┐┌▒█日本🍕\uFFFD\x80\x81\x8D\x90\x9D\xA0\xAD\u00C0\u00ED\x1A";
  bindery::Philox rng(2024);
  for (int trial = 0; trial < 2000; ++trial) {
    std::u32string s(static_cast<size_t>(rng.next_below(12)), U' ');
    for (char32_t& c : s) c = pool[rng.next_below(pool.size())];
    const std::u32string fixed = text::ftfy_fix_encoding(s);
    CHECK(std::all_of(fixed.begin(), fixed.end(),
                      [](char32_t c) { return c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF); }));
    CHECK_NOTHROW(text::ftfy_fix_text(s));
  }
}
