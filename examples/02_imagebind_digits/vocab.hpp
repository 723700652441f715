// examples/02_imagebind_digits/vocab.hpp — a word-level tokenizer for generated captions.
//
// The captions of the built-in data use a few dozen words, so a word vocabulary is all the text
// encoder needs (the CLIP BPE tokenizer, include/bindery/data/text/tokenizer.hpp, is for the real model).
// Ids: 0 padding, 1 unknown word, 2 start of text, then the words in sorted order, and the end-of-
// text token LAST, so that the EOS-token head of ImageBind's text encoder (it pools the token at
// argmax(ids)) finds it, as with CLIP's 49407.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <bindery/core/error.hpp>
#include <bindery/core/tensor.hpp>

namespace digits {

using bindery::IoError;

class WordVocab {
 public:
  static constexpr int64_t kPad = 0, kUnknown = 1, kStart = 2;

  /// Lower-case words: runs of letters or digits (punctuation and spaces separate them).
  static std::vector<std::string> words(const std::string& text) {
    std::vector<std::string> out;
    std::string word;
    for (char c : text) {
      if (std::isalnum(static_cast<unsigned char>(c))) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else if (!word.empty()) {
        out.push_back(word);
        word.clear();
      }
    }
    if (!word.empty()) out.push_back(word);
    return out;
  }

  WordVocab() = default;
  explicit WordVocab(const std::vector<std::string>& corpus) {
    std::set<std::string> all;
    for (const auto& text : corpus)
      for (auto& w : words(text)) all.insert(w);
    int64_t id = kStart + 1;
    for (const auto& w : all) ids_[w] = id++;
    end_ = id;
  }

  /// Reads what save() writes: one word per line, in id order from 3.
  static WordVocab load(const std::string& path) {
    std::ifstream in(path);
    BINDERY_CHECK(in.good(), IoError, "WordVocab::load: cannot open ", path);
    WordVocab v;
    int64_t id = kStart + 1;
    for (std::string word; std::getline(in, word);)
      if (!word.empty()) v.ids_[word] = id++;
    v.end_ = id;
    return v;
  }
  /// One word per line, in id order (ids 3, 4, ...); the end token follows the last word.
  void save(const std::string& path) const {
    std::vector<std::string> by_id(ids_.size());
    for (const auto& [w, id] : ids_) by_id[static_cast<size_t>(id - kStart - 1)] = w;
    std::ofstream out(path);
    for (const auto& w : by_id) out << w << '\n';
    BINDERY_CHECK(out.good(), IoError, "WordVocab::save: writing ", path, " failed");
  }

  int64_t size() const { return end_ + 1; }
  int64_t end_token() const { return end_; }

  /// (N, context) ids: start, words (truncated to fit), end, padding.
  bindery::Tensor<int64_t> encode(const std::vector<std::string>& texts, int64_t context) const {
    std::vector<int64_t> ids(texts.size() * static_cast<size_t>(context), kPad);
    for (size_t i = 0; i < texts.size(); ++i) {
      int64_t* row = ids.data() + i * static_cast<size_t>(context);
      int64_t n = 0;
      row[n++] = kStart;
      for (const auto& w : words(texts[i])) {
        if (n == context - 1) break;
        const auto it = ids_.find(w);
        row[n++] = it == ids_.end() ? kUnknown : it->second;
      }
      row[n] = end_;
    }
    return bindery::Tensor<int64_t>::from_vector(ids, {static_cast<int64_t>(texts.size()), context});
  }

 private:
  std::map<std::string, int64_t> ids_;
  int64_t end_ = 0;
};

}  // namespace digits
