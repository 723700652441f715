// The CLIP tokenizer against imagebind's SimpleTokenizer (tests/reference/text, written by
// tests/reference/make_audio_text_fixtures.py): ids, ftfy.fix_text and the cleaned text on 1,420
// strings (320 of them mojibake or near it), every code point's split class and lower(), decode, and
// malformed input. The mojibake repair on its own: test_text_mojibake.cpp.
#include "test_util.hpp"

#include <bindery/data/text/tokenizer.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using bindery::data::ClipTokenizer;
namespace text = bindery::data::text;

namespace {

std::string text_fixture(const std::string& name) {
  return std::string(BINDERY_TEST_DATA) + "/reference/text/" + name;
}
std::string bpe_path() {
  return std::string(BINDERY_SHARED_DATA) + "/imagebind_assets/bpe_simple_vocab_16e6.txt.gz";
}
const ClipTokenizer& tokenizer() {
  return bindery::data::clip_tokenizer(bpe_path());
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

/// Rows "FIRST\tLAST\tCLASS" (hex) of a run-length table.
struct Run {
  uint32_t first, last;
  char kind;
};
std::vector<Run> read_runs(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<Run> runs;
  for (std::string line; std::getline(in, line);) {
    std::istringstream row(line);
    std::string a, b, k;
    row >> a >> b >> k;
    runs.push_back({static_cast<uint32_t>(std::stoul(a, nullptr, 16)),
                    static_cast<uint32_t>(std::stoul(b, nullptr, 16)), k[0]});
  }
  return runs;
}

std::string hex(uint32_t c) {
  std::ostringstream s;
  s << "U+" << std::hex << std::uppercase << c;
  return s.str();
}

}  // namespace

TEST_CASE("tokenizer: ids identical to the reference on the corpus", "[data][tokenizer][reference]") {
  const auto records = read_jsonl(text_fixture("corpus.jsonl"));
  REQUIRE(records.size() >= 1400);
  size_t identical = 0, fixed_identical = 0, mojibake = 0, mojibake_identical = 0, long_texts = 0;
  for (const auto& r : records) {
    const std::string input = r.at("text");
    const auto expected = r.at("ids").get<std::vector<int64_t>>();  // up to and including the last EOT
    const auto ids = tokenizer().tokenize_one(input);
    REQUIRE(ids.size() == 77);
    std::vector<int64_t> head(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(expected.size()));
    const bool zeros_after = std::all_of(ids.begin() + static_cast<std::ptrdiff_t>(expected.size()),
                                         ids.end(), [](int64_t v) { return v == 0; });
    const bool same = head == expected && zeros_after;
    // ftfy.fix_text's output is stored where it differs from the input.
    const std::string ftfy_expected = r.contains("ftfy") ? r.at("ftfy").get<std::string>() : input;
    const std::string ftfy_ours = text::utf8_encode(text::ftfy_fix_text(text::utf8_decode(input)));
    long_texts += expected.size() == 77;
    identical += same;
    fixed_identical += ftfy_ours == ftfy_expected;
    if (r.at("mojibake").get<bool>()) {  // ftfy's mojibake repair changes it
      ++mojibake;
      mojibake_identical += same;
    }
    INFO("text: " << input << "\nftfy (reference): " << ftfy_expected << "\nftfy (ours):      " << ftfy_ours
                  << "\nclean (reference): " << r.at("clean").get<std::string>()
                  << "\nclean (ours):      " << text::utf8_encode(text::clean_text(input)));
    CHECK(ftfy_ours == ftfy_expected);
    CHECK(text::utf8_encode(text::clean_text(input)) == r.at("clean").get<std::string>());
    CHECK(same);
  }
  WARN("tokenizer: " << identical << " / " << records.size() << " strings with identical ids (" << long_texts
                     << " truncated to 77), " << fixed_identical << " / " << records.size()
                     << " with ftfy.fix_text's output; mojibake (ftfy re-decodes it): " << mojibake_identical
                     << " / " << mojibake);
  CHECK(mojibake >= 250);
  CHECK(identical == records.size());
  CHECK(fixed_identical == records.size());
}

TEST_CASE("tokenizer: hand-checked ids, truncation keeps EOT, batches", "[data][tokenizer]") {
  const auto& tok = tokenizer();
  CHECK(tok.vocab_size() == 49408);
  CHECK(tok.token(0) == "!");
  CHECK(tok.token(256) == "!</w>");
  CHECK(tok.token(49406) == "<|startoftext|>");
  CHECK(tok.token(49407) == "<|endoftext|>");
  // "a" "dog" "." are whole-word tokens; "A dog." lowercases first.
  const auto a = tok.encode("a");
  REQUIRE(a.size() == 1);
  CHECK(tok.token(a[0]) == "a</w>");
  const auto ids = tok.tokenize_one("A dog.");
  CHECK(tok.decode(std::vector<int64_t>(ids.begin() + 1, ids.begin() + 4)) == "a dog . ");
  CHECK(ids[0] == 49406);
  CHECK(ids[4] == 49407);
  CHECK(ids[5] == 0);
  // Empty text: SOT, EOT, zeros.
  const auto empty = tok.tokenize_one("");
  CHECK(empty[0] == 49406);
  CHECK(empty[1] == 49407);
  CHECK(std::all_of(empty.begin() + 2, empty.end(), [](int64_t v) { return v == 0; }));
  // 200 words: 76 tokens then EOT (the late-2025 fix), no padding.
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "dog ";
  const auto cut = tok.tokenize_one(long_text);
  CHECK(cut[0] == 49406);
  CHECK(cut[76] == 49407);
  CHECK(std::count(cut.begin(), cut.end(), tok.encode("dog")[0]) == 75);
  // A batch is (B, 77) int64, rows as tokenize_one.
  const auto batch = bindery::data::tokenize({"A dog.", "A car", "A bird"}, bpe_path());
  CHECK(batch.shape() == bindery::Shape{3, 77});
  CHECK(batch.select(0, 0).contiguous().to_vector() == ids);
  // Other context lengths work as in the reference (tokens[:n-1] + [EOT]).
  CHECK(tok.tokenize_one("a dog", 2) == std::vector<int64_t>{49406, 49407});
  CHECK(tok.tokenize_one("a dog", 1) == std::vector<int64_t>{49407});
  BINDERY_REQUIRE_THROWS_WITH_ALL(tok.tokenize_one("a", 0), bindery::ValueError, "context_length 0");
}

TEST_CASE("tokenizer: decode as the reference", "[data][tokenizer][reference]") {
  for (const auto& r : read_jsonl(text_fixture("decode.jsonl"))) {
    const auto ids = r.at("ids").get<std::vector<int64_t>>();
    INFO(r.at("text").get<std::string>());
    CHECK(tokenizer().decode(ids) == r.at("text").get<std::string>());
  }
  BINDERY_REQUIRE_THROWS_WITH_ALL(tokenizer().decode(std::vector<int64_t>{5, 49408}), bindery::IndexError,
                                  "49408");
}

TEST_CASE("tokenizer: every code point splits as regex's CLIP pattern (IGNORECASE)",
          "[data][tokenizer][unicode]") {
  size_t mismatches = 0, checked = 0;
  for (const Run& run : read_runs(text_fixture("split_classes.tsv"))) {
    for (uint32_t c = run.first; c <= run.last; ++c, ++checked) {
      const auto k = text::split_class(c);
      const char ours = k == text::SplitClass::kLetter   ? 'L'
                        : k == text::SplitClass::kNumber ? 'N'
                        : k == text::SplitClass::kSpace  ? 'S'
                        : k == text::SplitClass::kOther  ? 'O'
                                                         : 'X';
      if (ours != run.kind && mismatches++ < 20)
        FAIL_CHECK(hex(c) << ": ours " << ours << ", regex " << run.kind);
    }
  }
  CHECK(checked == 0x110000 - 0x800);
  CHECK(mismatches == 0);
}

TEST_CASE("tokenizer: str.lower() on every code point, and the final sigma", "[data][tokenizer][unicode]") {
  std::unordered_map<uint32_t, std::u32string> expected;
  {
    std::ifstream in(text_fixture("lowercase.tsv"));
    REQUIRE(in.good());
    for (std::string line; std::getline(in, line);) {
      std::istringstream row(line);
      std::string from, to;
      row >> from;
      std::u32string lower;
      while (row >> to) lower.push_back(static_cast<char32_t>(std::stoul(to, nullptr, 16)));
      expected[static_cast<uint32_t>(std::stoul(from, nullptr, 16))] = lower;
    }
  }
  REQUIRE(expected.size() > 1400);
  size_t mismatches = 0;
  for (uint32_t c = 0; c <= 0x10FFFF; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const auto it = expected.find(c);
    const std::u32string want = it == expected.end() ? std::u32string(1, c) : it->second;
    if (text::python_lower(std::u32string(1, c)) != want && mismatches++ < 20)
      FAIL_CHECK(hex(c) << " lowers differently");
  }
  CHECK(mismatches == 0);
  // Final sigma: the Cased / Case_Ignorable classes of every code point, as probed through Python.
  mismatches = 0;
  for (const Run& run : read_runs(text_fixture("sigma_classes.tsv"))) {
    for (uint32_t c = run.first; c <= run.last; ++c) {
      const char ours = text::detail::is_case_ignorable(c) ? 'I' : text::detail::is_cased(c) ? 'C' : '-';
      if (ours != run.kind && mismatches++ < 20)
        FAIL_CHECK(hex(c) << ": ours " << ours << ", Python " << run.kind);
    }
  }
  CHECK(mismatches == 0);
  CHECK(text::utf8_encode(text::python_lower(text::utf8_decode("ΟΔΥΣΣΕΥΣ Σ ΑΣ' Σ.Σ İ"))) ==
        "οδυσσευς σ ας' σ.ς i̇");
}

TEST_CASE("tokenizer: html.unescape and ftfy, by hand", "[data][tokenizer]") {
  auto unescape = [](const std::string& s) {
    return text::utf8_encode(text::html_unescape(text::utf8_decode(s)));
  };
  CHECK(unescape("Tom &amp; Jerry") == "Tom & Jerry");
  CHECK(unescape("&notit; &notin; &amp &ampx &lt3") == "¬it; ∉ & &x <3");
  CHECK(unescape("&#65;&#x42;&#X43;&#128;&#0;&#x110000;&#55296;&#x1F;") ==
        "ABC€\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(unescape("&#; &#x; &; &unknown;") == "&#; &#x; &; &unknown;");
  auto ftfy = [](const std::string& s) {
    return text::utf8_encode(text::ftfy_fix_text(text::utf8_decode(s)));
  };
  CHECK(ftfy("&amp;amp;amp;") == "&");              // unescaped to a fixed point...
  CHECK(ftfy("x < y &amp; z") == "x < y &amp; z");  // ...unless the text holds a '<'
  CHECK(ftfy("P&EACUTE;REZ") == "PÉREZ");           // ftfy's all-caps entities
  CHECK(ftfy("ﬁne ﬂow ＬＯＵＤ　it’s “q”") == "fine flow LOUD it's \"q\"");
  CHECK(ftfy("a\r\nb\rc\xE2\x80\xA8"
             "d") == "a\nb\nc\nd");
  CHECK(ftfy("\x1b[31mred\x1b[0m\x07") == "red");
  CHECK(ftfy("Cafe\xCC\x81") == "Café");                                 // NFC
  CHECK(ftfy("Ã©tÃ© Ã  la plage, donâ€™t") == "été à la plage, don't");  // mojibake, then quotes
}

TEST_CASE("tokenizer: invalid UTF-8 and random bytes never crash", "[data][tokenizer][malformed]") {
  CHECK(text::utf8_encode(text::utf8_decode("a\xE2\x80"
                                            "b\xFF\xC0\xAF\xED\xA0\x80"
                                            "c")) ==
        "a\xEF\xBF\xBD"
        "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
        "c");
  bindery::Philox rng(77);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes(static_cast<size_t>(rng.next_below(64)), '\0');
    for (char& b : bytes) b = static_cast<char>(rng.next_below(256));
    const auto ids = tokenizer().tokenize_one(bytes);
    CHECK(ids.size() == 77);
    CHECK(std::find(ids.begin(), ids.end(), ClipTokenizer::kEndOfText) != ids.end());
  }
}

TEST_CASE("tokenizer: missing or corrupt merges files -> typed errors", "[data][tokenizer][malformed]") {
  BINDERY_REQUIRE_THROWS_WITH_ALL(ClipTokenizer("/nonexistent/bpe.txt.gz"), bindery::IoError,
                                  "/nonexistent/bpe.txt.gz");
  const auto dir = std::filesystem::temp_directory_path() / ("bindery_tok_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string plain = (dir / "plain.txt").string();
  std::ofstream(plain) << "#version: 0.2\ni n\nt h\n";  // not gzipped (zlib reads it as is) and too short
  BINDERY_REQUIRE_THROWS_WITH_ALL(ClipTokenizer{plain}, bindery::FormatError, "plain.txt",
                                  "2 merges, 48894 expected");
  const std::string bad = (dir / "bad.gz").string();
  std::ofstream(bad, std::ios::binary)
      << std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage-not-deflate", 29);
  CHECK_THROWS_AS(ClipTokenizer{bad}, bindery::FormatError);
  std::filesystem::remove_all(dir);
}

TEST_CASE("tokenizer: long words cost O(n log n), tokenize_one caps them (issue 18, 10)",
          "[data][tokenizer][hardening]") {
  const auto& tok = tokenizer();
  // One "word" of 60,000 pseudo-random letters: the reference's merge loop rescans the word per
  // merge (8 s in the issue); encode() is exact and fast, and tokenize_one agrees with its first
  // 75 ids.
  std::string word;
  uint32_t state = 1;
  for (int i = 0; i < 60000; ++i) {
    state = state * 1103515245u + 12345u;
    word += static_cast<char>('a' + (state >> 16) % 26);
  }
  const std::vector<int64_t> all = tok.encode(word);
  REQUIRE(all.size() > 75);
  CHECK(tok.decode(all).size() == word.size() + 1);  // every byte once, then "</w>" as a space
  const std::vector<int64_t> ids = tok.tokenize_one(word);
  CHECK(std::equal(ids.begin() + 1, ids.begin() + 76, all.begin()));
  CHECK(ids[76] == ClipTokenizer::kEndOfText);
  // The cut is at kMaxTokenBytes * context_length + kWordCutMargin bytes: 9,024 for 77.
  const int64_t cut =
      ClipTokenizer::kMaxTokenBytes * ClipTokenizer::kContextLength + ClipTokenizer::kWordCutMargin;
  CHECK(cut == 9024);
  const std::vector<int64_t> prefix = tok.encode(word.substr(0, static_cast<size_t>(cut)));
  CHECK(std::equal(ids.begin() + 1, ids.begin() + 76, prefix.begin()));
  // encode's own limits: a prefix of the full list, and words cut to max_word_bytes.
  const std::vector<int64_t> first = tok.encode("a dog and a cat", 2);
  CHECK(first == tok.encode("a dog"));
  CHECK(tok.encode(word, -1, 5) == tok.encode(word.substr(0, 5)));
  // Repeated letters and repeated morphemes merge as the reference does (hand-checked).
  CHECK(tok.encode(std::string(20000, 'a')).size() < 20000);
  BINDERY_REQUIRE_THROWS_WITH_ALL(tok.tokenize_one("a", int64_t{1} << 21), bindery::ValueError, "2^20");
}
