// bindery/io/zip.hpp — a zip reader for the STORED (uncompressed) archives torch.save writes.
//
// Reads the end-of-central-directory record (and the zip64 locator + record that files > 4 GiB or
// with > 65535 entries need), the central directory (with zip64 extra fields for sizes and offsets),
// and every local header, which must agree with the central directory. Entries are not extracted:
// `data_offset` says where an entry's bytes lie in the file, so a reader preads them straight into
// their destination. Refused as FormatError, with file and byte offset: multi-disk archives,
// entries whose data runs past the central directory or overlaps another entry (a small file must not
// declare gigabytes by aliasing), duplicate names, inconsistent zip64 numbers, and — when read —
// compressed or encrypted entries.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindery/io/file.hpp"

namespace bindery::io {

/// One member of a zip archive, as its central directory and local header describe it.
struct ZipEntry {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;  // 0: stored, 8: deflate, ...
  uint32_t crc32 = 0;
  int64_t compressed_size = 0;
  int64_t size = 0;  // uncompressed
  int64_t local_header_offset = 0;
  int64_t data_offset = 0;            // first byte of the member's data in the file
  int64_t central_record_offset = 0;  // its central directory record (for messages)
};

/// CRC-32 (ISO-HDLC, as zip), continuing from `crc` (0 to start).
inline uint32_t crc32_update(uint32_t crc, const unsigned char* data, int64_t n) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  crc = ~crc;
  for (int64_t i = 0; i < n; ++i) crc = kTable[(crc ^ data[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

/// A read-only view of a stored zip archive. Construction validates the whole directory.
class ZipReader {
 public:
  /// Caps on the directory (a torch checkpoint has a few thousand entries).
  static constexpr int64_t kMaxCentralDirectoryBytes = int64_t{256} << 20;

  explicit ZipReader(File file) : file_(std::move(file)) {
    read_end_records();
    read_central_directory();
    read_local_headers();
  }

  const std::string& path() const { return file_.path(); }
  const File& file() const { return file_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// The entry called `name`, or nullptr.
  const ZipEntry* find(const std::string& name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &entries_[it->second];
  }

  /// Refuses entries bindery cannot read in place: compressed or encrypted ones.
  void require_stored(const ZipEntry& entry) const {
    if (entry.flags & 1u) {
      throw format_error(path(), describe(entry), static_cast<uint64_t>(entry.local_header_offset),
                         "the entry is encrypted");
    }
    if (entry.method != 0) {
      throw format_error(path(), describe(entry), static_cast<uint64_t>(entry.local_header_offset),
                         "the entry is compressed (method ", entry.method,
                         entry.method == 8 ? ", deflate" : "",
                         "); only stored entries are supported, as torch.save writes them — re-save the "
                         "file with torch.save instead of re-zipping it");
    }
  }

  /// The whole (stored) entry, for small members such as data.pkl; its CRC-32 is verified.
  std::string read_small(const ZipEntry& entry, int64_t max_bytes) const {
    require_stored(entry);
    if (entry.size > max_bytes) {
      throw format_error(path(), describe(entry), static_cast<uint64_t>(entry.data_offset), "entry of ",
                         entry.size, " bytes exceeds the ", max_bytes, "-byte limit for it");
    }
    std::string bytes(static_cast<size_t>(entry.size), '\0');
    file_.read_at(entry.data_offset, bytes.data(), entry.size, describe(entry));
    verify_crc32(entry, reinterpret_cast<const unsigned char*>(bytes.data()));
    return bytes;
  }

  /// Verifies an entry's CRC-32, reading it in 1 MiB chunks (or from `data` when given).
  void verify_crc32(const ZipEntry& entry, const unsigned char* data = nullptr) const {
    uint32_t crc = 0;
    if (data != nullptr) {
      crc = crc32_update(0, data, entry.size);
    } else {
      std::vector<unsigned char> chunk(static_cast<size_t>(std::min<int64_t>(entry.size, int64_t{1} << 20)));
      for (int64_t done = 0; done < entry.size;) {
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(chunk.size()), entry.size - done);
        file_.read_at(entry.data_offset + done, chunk.data(), n, describe(entry));
        crc = crc32_update(crc, chunk.data(), n);
        done += n;
      }
    }
    if (crc != entry.crc32) {
      throw format_error(path(), describe(entry), static_cast<uint64_t>(entry.data_offset),
                         "CRC-32 mismatch (the central directory says ", entry.crc32, ", the data gives ",
                         crc, "): the file is corrupted");
    }
  }

  std::string describe(const ZipEntry& entry) const {
    return ::bindery::detail::concat("zip entry '", entry.name, "'");
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail(std::string_view where, int64_t offset, const Parts&... parts) const {
    throw format_error(path(), where, static_cast<uint64_t>(offset), parts...);
  }

  void read_end_records() {
    const int64_t size = file_.size();
    if (size < 22)
      fail("zip end of central directory", 0, "file of ", size, " bytes is too short for a zip archive");
    // The end record (22 bytes + a comment of up to 65535) is the last thing in the file; scan back
    // for its signature and take the one whose comment ends exactly at the end of the file.
    const int64_t tail_size = std::min<int64_t>(size, 22 + 65535);
    const int64_t tail_start = size - tail_size;
    std::vector<unsigned char> tail(static_cast<size_t>(tail_size));
    file_.read_at(tail_start, tail.data(), tail_size, "zip end of central directory");
    int64_t eocd = -1;
    for (int64_t i = tail_size - 22; i >= 0; --i) {
      const unsigned char* p = tail.data() + i;
      if (read_le<uint32_t>(p) == 0x06054b50u && i + 22 + read_le<uint16_t>(p + 20) == tail_size) {
        eocd = tail_start + i;
        break;
      }
    }
    if (eocd < 0)
      fail("zip end of central directory", size - 22,
           "no end-of-central-directory record: not a zip archive, or truncated");
    const unsigned char* e = tail.data() + (eocd - tail_start);
    const uint16_t disk = read_le<uint16_t>(e + 4), cd_disk = read_le<uint16_t>(e + 6);
    const uint16_t disk_entries = read_le<uint16_t>(e + 8), entries = read_le<uint16_t>(e + 10);
    const uint32_t cd_size = read_le<uint32_t>(e + 12), cd_offset = read_le<uint32_t>(e + 16);
    entry_count_ = entries;
    cd_size_ = cd_size;
    cd_offset_ = cd_offset;
    directory_end_ = eocd;
    const bool has_locator = eocd >= 20 && [&] {
      unsigned char sig[4];
      file_.read_at(eocd - 20, sig, 4, "zip64 end of central directory locator");
      return read_le<uint32_t>(sig) == 0x07064b50u;
    }();
    if (!has_locator) {
      if (disk != 0 || cd_disk != 0 || disk_entries != entries)
        fail("zip end of central directory", eocd, "multi-disk archives are not supported");
      if (entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
        fail("zip end of central directory", eocd,
             "saturated counts (0xFFFF/0xFFFFFFFF) without a zip64 locator");
      }
      return;
    }
    unsigned char locator[20];
    file_.read_at(eocd - 20, locator, 20, "zip64 end of central directory locator");
    const int64_t record = static_cast<int64_t>(read_le<uint64_t>(locator + 8));
    if (read_le<uint32_t>(locator + 4) != 0 || read_le<uint32_t>(locator + 16) > 1) {
      fail("zip64 end of central directory locator", eocd - 20, "multi-disk archives are not supported");
    }
    if (record < 0 || record > eocd - 20 - 56) {
      fail("zip64 end of central directory locator", eocd - 20, "zip64 record offset ", record,
           " is outside the file");
    }
    unsigned char z[56];
    file_.read_at(record, z, 56, "zip64 end of central directory record");
    if (read_le<uint32_t>(z) != 0x06064b50u)
      fail("zip64 end of central directory record", record, "bad signature");
    if (read_le<uint32_t>(z + 16) != 0 || read_le<uint32_t>(z + 20) != 0 ||
        read_le<uint64_t>(z + 24) != read_le<uint64_t>(z + 32)) {
      fail("zip64 end of central directory record", record, "multi-disk archives are not supported");
    }
    // Each classic field is replaced by its zip64 twin only when saturated; an unsaturated field that
    // disagrees with its twin makes the archive ambiguous (two readers could see two directories).
    auto pick = [&](uint64_t classic, uint64_t saturated, uint64_t wide, const char* what) -> int64_t {
      if (classic != saturated && classic != wide) {
        fail("zip64 end of central directory record", record, what, " is ", wide,
             " but the classic end record says ", classic);
      }
      if (wide > static_cast<uint64_t>(INT64_MAX))
        fail("zip64 end of central directory record", record, what, " ", wide, " is out of range");
      return static_cast<int64_t>(wide);
    };
    entry_count_ = pick(entries, 0xFFFF, read_le<uint64_t>(z + 32), "the entry count");
    cd_size_ = pick(cd_size, 0xFFFFFFFFu, read_le<uint64_t>(z + 40), "the central directory size");
    cd_offset_ = pick(cd_offset, 0xFFFFFFFFu, read_le<uint64_t>(z + 48), "the central directory offset");
    directory_end_ = record;
  }

  void read_central_directory() {
    int64_t cd_end = 0;
    if (!checked_add(cd_offset_, cd_size_, cd_end) || cd_end > directory_end_) {
      fail("zip central directory", cd_offset_, "directory of ", cd_size_, " bytes at byte ", cd_offset_,
           " runs past its end record at byte ", directory_end_);
    }
    if (cd_size_ > kMaxCentralDirectoryBytes)
      fail("zip central directory", cd_offset_, "directory of ", cd_size_, " bytes exceeds the limit");
    // Every record is >= 46 bytes: a count the directory cannot hold is refused before allocating.
    if (entry_count_ > cd_size_ / 46) {
      fail("zip central directory", cd_offset_, "declares ", entry_count_, " entries but its ", cd_size_,
           " bytes hold at most ", cd_size_ / 46);
    }
    std::vector<unsigned char> cd(static_cast<size_t>(cd_size_));
    file_.read_at(cd_offset_, cd.data(), cd_size_, "zip central directory");
    entries_.reserve(static_cast<size_t>(entry_count_));
    int64_t pos = 0;
    for (int64_t index = 0; index < entry_count_; ++index) {
      const int64_t at = cd_offset_ + pos;
      const std::string where = ::bindery::detail::concat("zip central directory entry ", index);
      if (pos + 46 > cd_size_) fail(where, at, "record runs past the end of the directory");
      const unsigned char* r = cd.data() + pos;
      if (read_le<uint32_t>(r) != 0x02014b50u) fail(where, at, "bad signature");
      ZipEntry entry;
      entry.flags = read_le<uint16_t>(r + 8);
      entry.method = read_le<uint16_t>(r + 10);
      entry.crc32 = read_le<uint32_t>(r + 16);
      uint64_t compressed = read_le<uint32_t>(r + 20), size = read_le<uint32_t>(r + 24);
      const int64_t name_length = read_le<uint16_t>(r + 28), extra_length = read_le<uint16_t>(r + 30);
      const int64_t comment_length = read_le<uint16_t>(r + 32);
      const uint16_t disk = read_le<uint16_t>(r + 34);
      uint64_t local = read_le<uint32_t>(r + 42);
      const int64_t record_end = pos + 46 + name_length + extra_length + comment_length;
      if (record_end > cd_size_)
        fail(where, at, "name, extra field or comment runs past the end of the directory");
      entry.name.assign(reinterpret_cast<const char*>(r + 46), static_cast<size_t>(name_length));
      // zip64 extra field (id 1): the 64-bit values of exactly the saturated fields, in this order.
      const unsigned char* extra = r + 46 + name_length;
      for (int64_t e = 0; e + 4 <= extra_length;) {
        const uint16_t id = read_le<uint16_t>(extra + e);
        const int64_t length = read_le<uint16_t>(extra + e + 2);
        if (e + 4 + length > extra_length)
          fail(where, at + 46 + name_length + e, "extra field runs past its record");
        if (id == 1) {
          int64_t field = e + 4;
          auto take = [&](uint64_t& value, const char* what) {
            if (field + 8 > e + 4 + length)
              fail(where, at + 46 + name_length + e, "zip64 extra field lacks the ", what);
            value = read_le<uint64_t>(extra + field);
            field += 8;
          };
          if (size == 0xFFFFFFFFu) take(size, "uncompressed size");
          if (compressed == 0xFFFFFFFFu) take(compressed, "compressed size");
          if (local == 0xFFFFFFFFu) take(local, "local header offset");
        }
        e += 4 + length;
      }
      if (disk != 0 && disk != 0xFFFF) fail(where, at, "multi-disk archives are not supported");
      if (size > static_cast<uint64_t>(INT64_MAX) || compressed > static_cast<uint64_t>(INT64_MAX) ||
          local > static_cast<uint64_t>(INT64_MAX)) {
        fail(where, at, "size or offset out of range");
      }
      entry.size = static_cast<int64_t>(size);
      entry.compressed_size = static_cast<int64_t>(compressed);
      entry.local_header_offset = static_cast<int64_t>(local);
      entry.central_record_offset = at;
      if (entry.method == 0 && entry.size != entry.compressed_size) {
        fail(where, at, "stored entry '", entry.name, "' has size ", entry.size, " but compressed size ",
             entry.compressed_size);
      }
      if (!by_name_.emplace(entry.name, entries_.size()).second)
        fail(where, at, "duplicate entry name '", entry.name, "'");
      entries_.push_back(std::move(entry));
      pos = record_end;
    }
    if (pos != cd_size_)
      fail("zip central directory", cd_offset_ + pos, cd_size_ - pos, " unaccounted bytes after the last of ",
           entry_count_, " entries");
  }

  void read_local_headers() {
    for (ZipEntry& entry : entries_) {
      const int64_t at = entry.local_header_offset;
      const std::string where = ::bindery::detail::concat("zip local header of '", entry.name, "'");
      if (at > cd_offset_ - 30)
        fail(where, at, "local header offset lies past the central directory (byte ", cd_offset_, ")");
      unsigned char h[30];
      file_.read_at(at, h, 30, where);
      if (read_le<uint32_t>(h) != 0x04034b50u) fail(where, at, "bad signature");
      const int64_t name_length = read_le<uint16_t>(h + 26), extra_length = read_le<uint16_t>(h + 28);
      if (read_le<uint16_t>(h + 8) != entry.method)
        fail(where, at, "compression method differs from the central directory");
      if (name_length != static_cast<int64_t>(entry.name.size()))
        fail(where, at, "name differs from the central directory");
      std::string name(static_cast<size_t>(name_length), '\0');
      if (at + 30 + name_length > cd_offset_) fail(where, at, "name runs into the central directory");
      file_.read_at(at + 30, name.data(), name_length, where);
      if (name != entry.name)
        fail(where, at + 30, "name '", name, "' differs from the central directory's '", entry.name, "'");
      // Without a data descriptor (flag bit 3) the local sizes must agree (or defer to zip64 extras).
      const uint32_t local_compressed = read_le<uint32_t>(h + 18), local_size = read_le<uint32_t>(h + 22);
      if (!(read_le<uint16_t>(h + 6) & 8u)) {
        auto agrees = [](uint32_t local, int64_t central) {
          return local == 0xFFFFFFFFu || local == static_cast<uint32_t>(central);
        };
        if (!agrees(local_compressed, entry.compressed_size) || !agrees(local_size, entry.size)) {
          fail(where, at, "sizes differ from the central directory");
        }
      }
      entry.data_offset = at + 30 + name_length + extra_length;
      int64_t data_end = 0;
      if (!checked_add(entry.data_offset, entry.compressed_size, data_end) || data_end > cd_offset_) {
        fail(where, at, "data of ", entry.compressed_size, " bytes at byte ", entry.data_offset,
             " runs past the start of the central directory (byte ", cd_offset_, ")");
      }
    }
    // No two members may share bytes: aliasing would let a small file declare huge contents.
    std::vector<const ZipEntry*> order;
    for (const ZipEntry& e : entries_) order.push_back(&e);
    std::sort(order.begin(), order.end(),
              [](auto* a, auto* b) { return a->local_header_offset < b->local_header_offset; });
    for (size_t i = 1; i < order.size(); ++i) {
      if (order[i]->local_header_offset < order[i - 1]->data_offset + order[i - 1]->compressed_size) {
        fail(::bindery::detail::concat("zip local header of '", order[i]->name, "'"),
             order[i]->local_header_offset, "overlaps the data of '", order[i - 1]->name, "'");
      }
    }
  }

  File file_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
  int64_t entry_count_ = 0, cd_size_ = 0, cd_offset_ = 0;
  int64_t directory_end_ = 0;  // the zip64 record or the end record: the directory must end before it
};

}  // namespace bindery::io
