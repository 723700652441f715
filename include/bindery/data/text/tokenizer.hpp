// bindery/data/text/tokenizer.hpp — the CLIP byte-level BPE tokenizer ImageBind's text encoder reads.
//
// text -> clean + split (data/text/clean.hpp) -> each piece's UTF-8 bytes mapped to printable code
// points (GPT-2's bytes_to_unicode) -> BPE with the 48,894 merges of bpe_simple_vocab_16e6.txt.gz
// (lowest rank first; the last symbol carries "</w>") -> ids in the 49,408-entry vocabulary:
//   [0, 256)       the 256 byte symbols,        [256, 512)  the same + "</w>",
//   [512, 49406)   one per merge (in order),    49406 <|startoftext|>, 49407 <|endoftext|>.
// tokenize(): [SOT] + ids, cut to context_length - 1, then EOT, zero-padded to context_length (77):
// the reference after its late-2025 fix (long text keeps its EOT, which the text head reads).
// Ids are identical to imagebind's SimpleTokenizer on every test string, mojibake included
// (tests/data/text/test_tokenizer.cpp; what the cleaning matches: data/text/clean.hpp).
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <unordered_map>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/text/clean.hpp"
#include "bindery/io/file.hpp"

namespace bindery::data {

namespace detail {

/// The whole decompressed content of a gzip file, capped at `limit` bytes.
inline std::string read_gzip(const std::string& path, int64_t limit = int64_t{64} << 20) {
  { const io::File probe = io::File::open(path); }  // a typed IoError for a missing/unreadable file
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw io::io_error(path, "cannot open as gzip");
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(file, gzclose);
  std::string out;
  char buffer[1 << 16];
  while (true) {
    const int got = gzread(file, buffer, sizeof(buffer));
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      throw io::format_error(path, "gzip stream", static_cast<uint64_t>(out.size()),
                             "decompression failed: ", message, " (offset is in the decompressed data)");
    }
    if (got == 0) break;
    out.append(buffer, static_cast<size_t>(got));
    if (static_cast<int64_t>(out.size()) > limit)
      throw io::format_error(path, "gzip stream", static_cast<uint64_t>(limit), "decompresses to more than ",
                             limit, " bytes: not a BPE merges file");
  }
  return out;
}

/// GPT-2's bytes_to_unicode: byte -> code point; printable Latin-1 bytes map to themselves, the rest
/// to 256 + n in byte order.
inline std::vector<char32_t> bytes_to_unicode() {
  std::vector<char32_t> map(256, 0);
  std::vector<bool> direct(256, false);
  for (int b = '!'; b <= '~'; ++b) direct[static_cast<size_t>(b)] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) direct[static_cast<size_t>(b)] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) direct[static_cast<size_t>(b)] = true;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b)
    map[static_cast<size_t>(b)] = direct[static_cast<size_t>(b)] ? static_cast<char32_t>(b) : next++;
  return map;
}

}  // namespace detail

/// The CLIP tokenizer of the reference (immutable after construction; encode() is thread-safe).
class ClipTokenizer {
 public:
  static constexpr int64_t kStartOfText = 49406;
  static constexpr int64_t kEndOfText = 49407;
  static constexpr int64_t kContextLength = 77;
  static constexpr int64_t kMerges = 49152 - 256 - 2;  // lines 1 .. 48894 of the merges file

  /// Loads the merges (bpe_simple_vocab_16e6.txt.gz). Throws IoError / FormatError (file, line).
  explicit ClipTokenizer(const std::string& bpe_path) {
    const std::string content = detail::read_gzip(bpe_path);
    BINDERY_CHECK(io::is_valid_utf8(reinterpret_cast<const unsigned char*>(content.data()),
                                    static_cast<int64_t>(content.size())),
                  FormatError, bpe_path, ": the merges are not valid UTF-8");
    const std::vector<char32_t> byte_map = detail::bytes_to_unicode();
    // Vocabulary: bytes in bytes_to_unicode's order (printable ones first, then the rest).
    std::vector<int> order;
    for (int b = 0; b < 256; ++b)
      if (byte_map[static_cast<size_t>(b)] < 256) order.push_back(b);
    for (int b = 0; b < 256; ++b)
      if (byte_map[static_cast<size_t>(b)] >= 256) order.push_back(b);
    for (int b : order)
      vocab_.push_back(text::utf8_encode(std::u32string(1, byte_map[static_cast<size_t>(b)])));
    for (int i = 0; i < 256; ++i) vocab_.push_back(vocab_[static_cast<size_t>(i)] + "</w>");
    for (int b = 0; b < 256; ++b)
      byte_symbol_[b] = text::utf8_encode(std::u32string(1, byte_map[static_cast<size_t>(b)]));
    for (int b = 0; b < 256; ++b)
      byte_decoder_[byte_map[static_cast<size_t>(b)]] = static_cast<unsigned char>(b);
    // Merges: line 0 is a version header; then "first second" per line.
    size_t pos = content.find('\n');
    BINDERY_CHECK(pos != std::string::npos, FormatError, bpe_path, ": no merges after the header line");
    ++pos;
    for (int64_t rank = 0; rank < kMerges; ++rank) {
      BINDERY_CHECK(pos < content.size(), FormatError, bpe_path, ": ", rank, " merges, ", kMerges,
                    " expected");
      size_t end = content.find('\n', pos);
      if (end == std::string::npos) end = content.size();
      const std::string_view line(content.data() + pos, end - pos);
      const size_t space = line.find(' ');
      BINDERY_CHECK(space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                        line.find(' ', space + 1) == std::string_view::npos,
                    FormatError, bpe_path, ": line ", rank + 2, " is not 'first second': '", line, "'");
      const std::string first(line.substr(0, space)), second(line.substr(space + 1));
      ranks_.emplace(first + ' ' + second, static_cast<int32_t>(rank));
      vocab_.push_back(first + second);
      pos = end + 1;
    }
    vocab_.push_back("<|startoftext|>");
    vocab_.push_back("<|endoftext|>");
    // dict(zip(vocab, range(n))): a repeated string keeps its last id, as in Python.
    for (size_t id = 0; id < vocab_.size(); ++id) encoder_[vocab_[id]] = static_cast<int32_t>(id);
  }

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }

  /// The vocabulary string of `id` (byte symbols as bytes_to_unicode code points).
  const std::string& token(int64_t id) const {
    BINDERY_CHECK(id >= 0 && id < vocab_size(), IndexError, "ClipTokenizer: id ", id, " outside [0, ",
                  vocab_size(), ")");
    return vocab_[static_cast<size_t>(id)];
  }

  /// The longest vocabulary entry, in bytes: every token covers at most this many bytes of a word.
  static constexpr int64_t kMaxTokenBytes = 64;
  /// tokenize_one's word-length limit is kMaxTokenBytes * context_length + kWordCutMargin bytes
  /// (9,024 for 77 tokens); see tokenize_one.
  static constexpr int64_t kWordCutMargin = 4096;

  /// BPE ids of `text` (UTF-8), without start/end tokens: SimpleTokenizer.encode, every token of
  /// every word (the merges take O(n log n) in a word's length n). `max_tokens` >= 0 stops after the
  /// word that reaches that many ids (the ids are then a prefix of the full list), and
  /// `max_word_bytes` >= 0 cuts each word to that many bytes before its merges (see tokenize_one).
  std::vector<int64_t> encode(std::string_view text, int64_t max_tokens = -1,
                              int64_t max_word_bytes = -1) const {
    std::vector<int64_t> ids;
    for (const std::u32string& piece : text::clip_split(text::clean_text(text))) {
      if (max_tokens >= 0 && static_cast<int64_t>(ids.size()) >= max_tokens) break;
      std::string bytes = text::utf8_encode(piece);
      if (max_word_bytes >= 0 && static_cast<int64_t>(bytes.size()) > max_word_bytes)
        bytes.resize(static_cast<size_t>(max_word_bytes));
      std::string symbols;  // the piece's bytes as byte symbols
      for (unsigned char b : bytes) symbols += byte_symbol_[b];
      for (int32_t id : bpe(symbols)) ids.push_back(id);
    }
    return ids;
  }

  /// [SOT] + encode(text), cut to context_length - 1, + [EOT], zero-padded: (context_length).
  ///
  /// Resource limit: only the words that reach the first context_length - 2 ids are encoded, and a
  /// word longer than kMaxTokenBytes * context_length + kWordCutMargin bytes (9,024 for 77 tokens)
  /// is cut to that length before its merges, so a text costs at most that much BPE work whatever
  /// its length (a 60,000-letter word took 8 s). What the cut can change: only tokens whose merges
  /// see the cut. The kept tokens cover at most kMaxTokenBytes * (context_length - 2) bytes, so they
  /// are the reference's unless a change of merges at the cut cascades back over more than
  /// kWordCutMargin (4,096) bytes; on 3,000 random words, cascades reached back 12 bytes at most.
  std::vector<int64_t> tokenize_one(std::string_view text, int64_t context_length = kContextLength) const {
    BINDERY_CHECK(context_length >= 1, ValueError, "ClipTokenizer: context_length ", context_length,
                  " must be >= 1");
    BINDERY_CHECK(context_length <= (int64_t{1} << 20), ValueError, "ClipTokenizer: context_length ",
                  context_length, " is above the 2^20 limit");
    std::vector<int64_t> ids = {kStartOfText};
    const std::vector<int64_t> body =
        encode(text, context_length - 1, kMaxTokenBytes * context_length + kWordCutMargin);
    ids.insert(ids.end(), body.begin(), body.end());
    if (static_cast<int64_t>(ids.size()) > context_length - 1)
      ids.resize(static_cast<size_t>(context_length - 1));
    ids.push_back(kEndOfText);
    ids.resize(static_cast<size_t>(context_length), 0);
    return ids;
  }

  /// texts -> (B, context_length) int64 ids, as the reference's load_and_transform_text.
  template <class B = Cpu>
  Tensor<int64_t, B> tokenize(const std::vector<std::string>& texts,
                              int64_t context_length = kContextLength) const {
    std::vector<int64_t> all;
    all.reserve(texts.size() * static_cast<size_t>(std::max<int64_t>(context_length, 0)));
    for (const std::string& text : texts) {
      const std::vector<int64_t> ids = tokenize_one(text, context_length);
      all.insert(all.end(), ids.begin(), ids.end());
    }
    return Tensor<int64_t, B>::from_vector(all, Shape{static_cast<int64_t>(texts.size()), context_length});
  }

  /// SimpleTokenizer.decode: ids -> text ("</w>" becomes a space; invalid UTF-8 -> U+FFFD).
  std::string decode(std::span<const int64_t> ids) const {
    std::string symbols;
    for (int64_t id : ids) symbols += token(id);
    std::string bytes;
    for (char32_t c : text::utf8_decode(symbols)) {
      const auto it = byte_decoder_.find(c);
      // "<|startoftext|>" and "</w>" are printable ASCII: every code point here has a byte.
      BINDERY_CHECK(it != byte_decoder_.end(), ValueError, "ClipTokenizer::decode: U+",
                    static_cast<uint32_t>(c), " is not a byte symbol");
      bytes.push_back(static_cast<char>(it->second));
    }
    std::string out = text::utf8_encode(text::utf8_decode(bytes));
    std::string spaced;
    for (size_t i = 0; i < out.size();) {
      if (out.compare(i, 4, "</w>") == 0) {
        spaced.push_back(' ');
        i += 4;
      } else {
        spaced.push_back(out[i++]);
      }
    }
    return spaced;
  }

 private:
  /// Byte-pair merges of one piece (a string of byte symbols), memoized.
  std::vector<int32_t> bpe(const std::string& symbols) const {
    if (symbols == "<|startoftext|>") return {static_cast<int32_t>(kStartOfText)};
    if (symbols == "<|endoftext|>") return {static_cast<int32_t>(kEndOfText)};
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (const auto it = cache_.find(symbols); it != cache_.end()) return it->second;
    }
    // word = one symbol per code point, "</w>" glued to the last.
    std::vector<std::string> word;
    for (char32_t c : text::utf8_decode(symbols)) word.push_back(text::utf8_encode(std::u32string(1, c)));
    word.back() += "</w>";
    word = merge_pairs(std::move(word));
    std::vector<int32_t> ids;
    for (const std::string& symbol : word) {
      const auto it = encoder_.find(symbol);
      BINDERY_CHECK(it != encoder_.end(), ValueError, "ClipTokenizer: BPE symbol '", symbol,
                    "' is not in the vocabulary");
      ids.push_back(it->second);
    }
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheLimit) cache_.clear();  // bounded memory on endless distinct input
    cache_.emplace(symbols, ids);
    return ids;
  }

  /// SimpleTokenizer.bpe's merge loop — repeatedly take the adjacent pair of lowest rank and merge
  /// every occurrence of it, left to right without overlap — in O(n log n) instead of O(n^2): the
  /// pairs wait in a min-heap by (rank, position); all the entries of the lowest rank are popped as
  /// one batch and applied in position order, and the pairs the batch creates are pushed after it.
  /// That is the same sequence of merges: within a batch the left-to-right scan over the old symbols
  /// is replayed (a merged symbol is longer than both halves, so it never matches the pair again),
  /// and a new pair, whatever its rank, is only considered from the next batch on, as the reference
  /// only considers it in its next iteration. (The reference rescans the whole word per merge: a
  /// word of 60,000 letters took 8 s; the parity tests cover the equivalence.)
  std::vector<std::string> merge_pairs(std::vector<std::string> word) const {
    const auto n = static_cast<int64_t>(word.size());
    std::vector<int64_t> next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));
    std::vector<bool> alive(static_cast<size_t>(n), true);
    for (int64_t i = 0; i < n; ++i) {
      next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
      prev[static_cast<size_t>(i)] = i - 1;
    }
    using Entry = std::pair<int32_t, int64_t>;  // (rank, left symbol's position)
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    const auto rank_at = [&](int64_t i) -> int32_t {  // rank of the pair starting at i, or -1
      const int64_t j = next[static_cast<size_t>(i)];
      if (j < 0) return -1;
      const auto it = ranks_.find(word[static_cast<size_t>(i)] + ' ' + word[static_cast<size_t>(j)]);
      return it == ranks_.end() ? -1 : it->second;
    };
    const auto push = [&](int64_t i) {
      if (i < 0) return;
      const int32_t rank = rank_at(i);
      if (rank >= 0) heap.emplace(rank, i);
    };
    for (int64_t i = 0; i + 1 < n; ++i) push(i);
    std::vector<int64_t> batch, merged;
    while (!heap.empty()) {
      const int32_t rank = heap.top().first;
      batch.clear();
      while (!heap.empty() && heap.top().first == rank) {
        batch.push_back(heap.top().second);
        heap.pop();
      }
      std::sort(batch.begin(), batch.end());
      merged.clear();
      for (const int64_t i : batch) {
        // Stale entries (a symbol already merged away, or changed) no longer hold the pair.
        if (!alive[static_cast<size_t>(i)] || rank_at(i) != rank) continue;
        const int64_t j = next[static_cast<size_t>(i)];
        word[static_cast<size_t>(i)] += word[static_cast<size_t>(j)];
        word[static_cast<size_t>(j)].clear();
        alive[static_cast<size_t>(j)] = false;
        next[static_cast<size_t>(i)] = next[static_cast<size_t>(j)];
        if (next[static_cast<size_t>(j)] >= 0) prev[static_cast<size_t>(next[static_cast<size_t>(j)])] = i;
        merged.push_back(i);
      }
      for (const int64_t i : merged) {
        push(prev[static_cast<size_t>(i)]);
        push(i);
      }
    }
    std::vector<std::string> out;
    for (int64_t i = 0; i >= 0; i = next[static_cast<size_t>(i)])
      out.push_back(std::move(word[static_cast<size_t>(i)]));
    return out;
  }

  static constexpr size_t kCacheLimit = 1 << 18;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> encoder_;
  std::unordered_map<std::string, int32_t> ranks_;  // "first second" -> rank
  std::string byte_symbol_[256];
  std::unordered_map<char32_t, unsigned char> byte_decoder_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

/// A tokenizer per merges file, loaded once per process (thread-safe).
inline const ClipTokenizer& clip_tokenizer(const std::string& bpe_path) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::unique_ptr<ClipTokenizer>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = loaded[bpe_path];
  if (!slot) slot = std::make_unique<ClipTokenizer>(bpe_path);
  return *slot;
}

/// texts -> (B, 77) int64 token ids with the merges at `bpe_path` (the reference's
/// load_and_transform_text).
template <class B = Cpu>
Tensor<int64_t, B> tokenize(const std::vector<std::string>& texts, const std::string& bpe_path,
                            int64_t context_length = ClipTokenizer::kContextLength) {
  return clip_tokenizer(bpe_path).tokenize<B>(texts, context_length);
}

}  // namespace bindery::data
