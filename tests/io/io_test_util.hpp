// tests/io/io_test_util.hpp — helpers for the file-format tests: fixture paths, scratch files, a
// tiny stored-zip writer and a pickle byte builder to craft malformed inputs in the tests.
#pragma once

#include "test_util.hpp"

#include <bindery/io/all.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace bindery::testing::io {

inline std::string fixture(const std::string& name) {
  return std::string(BINDERY_TEST_DATA) + "/reference/io/" + name;
}

/// A path in this process's scratch folder, created on first use and removed at exit.
inline std::string scratch(const std::string& name) {
  struct Folder {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("bindery_io_test_" + std::to_string(::getpid()));
    Folder() { std::filesystem::create_directories(path); }
    ~Folder() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Folder folder;
  return (folder.path / name).string();
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::string write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
  return path;
}

/// A file for the per-byte loops, changed in place: shrink() truncates it and poke() rewrites one
/// byte. (Rewriting it with O_TRUNC thousands of times is slow: ext4 flushes replaced files.)
class ScratchFile {
 public:
  ScratchFile(std::string path, const std::string& bytes) : path_(std::move(path)) {
    write_bytes(path_, bytes);
  }
  const std::string& path() const { return path_; }
  void shrink(size_t n) const { REQUIRE(::truncate(path_.c_str(), static_cast<off_t>(n)) == 0); }
  void poke(size_t offset, char byte) const {
    const int fd = ::open(path_.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    const bool ok = ::pwrite(fd, &byte, 1, static_cast<off_t>(offset)) == 1;
    ::close(fd);
    REQUIRE(ok);
  }

 private:
  std::string path_;
};

template <class U>
void put_le(std::string& out, U value) {
  for (size_t i = 0; i < sizeof(U); ++i)
    out += static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xff);
}

struct ZipMember {
  std::string name;
  std::string data;
  uint16_t method = 0;        // claim another method to test refusal (data stays raw)
  std::string local_name{};   // when non-empty, the local header's name (to test a mismatch)
  int64_t local_offset = -1;  // when >= 0, the central directory's local header offset (to alias)
};

/// A minimal stored zip: local headers + data, central directory, end record.
/// `declared_entries` (when >= 0) overrides the end record's entry counts.
inline std::string make_zip(const std::vector<ZipMember>& members, int64_t declared_entries = -1) {
  std::string out, cd;
  for (const ZipMember& m : members) {
    const auto offset =
        static_cast<uint32_t>(m.local_offset >= 0 ? m.local_offset : static_cast<int64_t>(out.size()));
    const std::string& local_name = m.local_name.empty() ? m.name : m.local_name;
    const uint32_t crc = bindery::io::crc32_update(0, reinterpret_cast<const unsigned char*>(m.data.data()),
                                                   static_cast<int64_t>(m.data.size()));
    const auto size = static_cast<uint32_t>(m.data.size());
    if (m.local_offset < 0) {
      put_le<uint32_t>(out, 0x04034b50u);
      put_le<uint16_t>(out, 20);
      put_le<uint16_t>(out, 0);
      put_le<uint16_t>(out, m.method);
      put_le<uint32_t>(out, 0);  // time, date
      put_le<uint32_t>(out, crc);
      put_le<uint32_t>(out, size);
      put_le<uint32_t>(out, size);
      put_le<uint16_t>(out, static_cast<uint16_t>(local_name.size()));
      put_le<uint16_t>(out, 0);
      out += local_name + m.data;
    }
    put_le<uint32_t>(cd, 0x02014b50u);
    put_le<uint16_t>(cd, 20);
    put_le<uint16_t>(cd, 20);
    put_le<uint16_t>(cd, 0);
    put_le<uint16_t>(cd, m.method);
    put_le<uint32_t>(cd, 0);
    put_le<uint32_t>(cd, crc);
    put_le<uint32_t>(cd, size);
    put_le<uint32_t>(cd, size);
    put_le<uint16_t>(cd, static_cast<uint16_t>(m.name.size()));
    put_le<uint32_t>(cd, 0);  // extra length, comment length
    put_le<uint32_t>(cd, 0);  // disk, internal attributes
    put_le<uint32_t>(cd, 0);  // external attributes
    put_le<uint32_t>(cd, offset);
    cd += m.name;
  }
  const auto cd_offset = static_cast<uint32_t>(out.size());
  const auto count =
      static_cast<uint16_t>(declared_entries >= 0 ? declared_entries : static_cast<int64_t>(members.size()));
  out += cd;
  put_le<uint32_t>(out, 0x06054b50u);
  put_le<uint32_t>(out, 0);
  put_le<uint16_t>(out, count);
  put_le<uint16_t>(out, count);
  put_le<uint32_t>(out, static_cast<uint32_t>(cd.size()));
  put_le<uint32_t>(out, cd_offset);
  put_le<uint16_t>(out, 0);
  return out;
}

/// Builds protocol-2 pickle bytes opcode by opcode.
struct Pickle {
  std::string bytes = "\x80\x02";
  Pickle& op(char c) { return bytes += c, *this; }
  Pickle& raw(const std::string& s) { return bytes += s, *this; }
  Pickle& str(const std::string& s) {
    bytes += 'X';
    put_le<uint32_t>(bytes, static_cast<uint32_t>(s.size()));
    return raw(s);
  }
  Pickle& int1(uint8_t v) { return bytes += 'K', bytes += static_cast<char>(v), *this; }
  Pickle& long1(int64_t v) {
    bytes += "\x8a\x08";
    put_le<uint64_t>(bytes, static_cast<uint64_t>(v));
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    return raw("c" + module + "\n" + name + "\n");
  }
  /// ('storage', torch.<type>, key, 'cpu', numel) BINPERSID
  Pickle& storage(const std::string& type, const std::string& key, int64_t numel) {
    op('(').str("storage").global("torch", type).str(key).str("cpu").long1(numel).op('t');
    return op('Q');
  }
  /// _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    storage(type, key, numel).long1(offset);
    op('(');
    for (int64_t s : size) long1(s);
    op('t').op('(');
    for (int64_t s : stride) long1(s);
    op('t').op('\x89').global("collections", "OrderedDict").op(')').op('R').op('t');
    return op('R');
  }
};

/// A torch.save-like archive: archive/data.pkl (+ byteorder) and archive/data/<key> members.
inline std::string make_pth(const std::string& pickle,
                            const std::vector<std::pair<std::string, std::string>>& storages) {
  std::vector<ZipMember> members{{"archive/data.pkl", pickle}, {"archive/byteorder", "little"}};
  for (const auto& [key, data] : storages) members.push_back({"archive/data/" + key, data});
  return make_zip(members);
}

/// `n` float32 values 0, 1, 2, ... as raw bytes.
inline std::string float_bytes(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    const float v = static_cast<float>(i);
    out.append(reinterpret_cast<const char*>(&v), 4);
  }
  return out;
}

}  // namespace bindery::testing::io
