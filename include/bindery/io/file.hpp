// bindery/io/file.hpp — POSIX file access shared by the readers and writers of bindery/io.
//
// - `File`: a read-only descriptor with `read_at` (pread): readers fetch only what they need, so a
//   4.8 GB checkpoint is never held in memory twice.
// - `MappedFile`: a private, copy-on-write mmap of a whole file (safetensors' zero-copy path).
// - `AtomicFileWriter`: temp file in the target's folder, then fsync + rename + folder fsync, so a
//   crash leaves either the old file or the complete new one, never a torn one.
// - `format_error` / `io_error`: the typed errors every reader throws. A FormatError message reads
//   "<file>: <where> at byte <offset>: <problem>", so a user can open the file at that byte.
// - checked arithmetic: sizes read from a file are never trusted to fit in 64 bits; is_valid_utf8.
// - `KeyFilter`: which tensors of a weights file a reader loads (the others are never read).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/core/shape.hpp"
#include "bindery/io/dtype.hpp"

namespace bindery::io {

/// A FormatError "<file>: <where> at byte <offset>: <parts...>".
template <class... Parts>
FormatError format_error(std::string_view file, std::string_view where, uint64_t offset,
                         const Parts&... parts) {
  return FormatError(::bindery::detail::concat(file, ": ", where, " at byte ", offset, ": ", parts...));
}

/// An IoError "<file>: <parts...>: <strerror(errno)>". Call right after the failing system call.
template <class... Parts>
IoError io_error(std::string_view file, const Parts&... parts) {
  const int code = errno;
  return IoError(::bindery::detail::concat(file, ": ", parts..., ": ", std::strerror(code)));
}

/// Selects tensors of a weights file by name: true to load. An empty filter loads every tensor.
using KeyFilter = std::function<bool(const std::string&)>;

/// True when `filter` is empty or accepts `key`.
inline bool accepts(const KeyFilter& filter, const std::string& key) {
  return !filter || filter(key);
}

/// a * b and a + b on sizes read from files: false on overflow (or a negative operand).
inline bool checked_mul(int64_t a, int64_t b, int64_t& out) {
  return a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, &out);
}
inline bool checked_add(int64_t a, int64_t b, int64_t& out) {
  return a >= 0 && b >= 0 && !__builtin_add_overflow(a, b, &out);
}
/// Product of extents, false on a negative extent or when the shape is not representable: the
/// product with zero extents counted as 1 (the span of its contiguous strides) must fit int64 too,
/// or a header such as (0, 2^62, 4) — 0 elements, so every byte count passes — would build a tensor
/// whose strides overflow (bindery::Shape refuses it the same way).
template <class Range>
bool checked_numel(const Range& dims, int64_t& out) {
  int64_t span = 0;
  return ::bindery::detail::checked_extents(dims, out, span);
}

/// Little-endian integer at `p` (any alignment).
template <class U>
U read_le(const unsigned char* p) {
  U value;
  std::memcpy(&value, p, sizeof(U));
  return value;  // io/dtype.hpp static_asserts a little-endian host
}

/// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
inline bool is_valid_utf8(const unsigned char* s, int64_t n) {
  for (int64_t i = 0; i < n;) {
    const unsigned c = s[i];
    int64_t extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= n) return false;  // truncated sequence
    for (int64_t k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

/// A read-only POSIX file descriptor (move-only).
class File {
 public:
  File() = default;
  static File open(const std::string& path) {
    File file;
    file.path_ = path;
    file.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file.fd_ < 0) throw io_error(path, "cannot open for reading");
    struct stat info {};
    if (::fstat(file.fd_, &info) != 0) throw io_error(path, "cannot stat");
    if (!S_ISREG(info.st_mode)) throw IoError(::bindery::detail::concat(path, ": not a regular file"));
    file.size_ = static_cast<int64_t>(info.st_size);
    return file;
  }
  File(File&& other) noexcept { *this = std::move(other); }
  File& operator=(File&& other) noexcept {
    std::swap(fd_, other.fd_);
    std::swap(size_, other.size_);
    std::swap(path_, other.path_);
    return *this;
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }

  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

  /// Reads exactly `n` bytes at `offset`. A range past the end of the file is a FormatError
  /// (the file's own numbers pointed there); a failing read is an IoError.
  void read_at(int64_t offset, void* destination, int64_t n, std::string_view what) const {
    int64_t end = 0;
    if (!checked_add(offset, n, end) || end > size_) {
      throw format_error(path_, what, static_cast<uint64_t>(offset), "needs ", n, " bytes but the file has ",
                         size_, " bytes");
    }
    auto* out = static_cast<char*>(destination);
    while (n > 0) {
      const size_t chunk = static_cast<size_t>(std::min<int64_t>(n, int64_t{1} << 30));
      const ssize_t got = ::pread(fd_, out, chunk, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw io_error(path_, "read of ", chunk, " bytes at byte ", offset, " failed");
      if (got == 0) {
        throw format_error(path_, what, static_cast<uint64_t>(offset), "unexpected end of file (it shrank?)");
      }
      out += got;
      offset += got;
      n -= got;
    }
  }

 private:
  int fd_ = -1;
  int64_t size_ = 0;
  std::string path_;
};

/// A whole file mapped privately (reads are zero-copy; writes through the pointer are copy-on-write
/// and never reach the file). The mapping lives as long as the last shared_ptr to it.
/// Caveat of every mmap reader: if another process truncates the file meanwhile, reading the lost
/// pages raises SIGBUS.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path) { return map(File::open(path)); }
  /// Maps an open file (the mapping outlives the descriptor).
  static std::shared_ptr<MappedFile> map(const File& file) {
    const std::string& path = file.path();
    auto mapped = std::shared_ptr<MappedFile>(new MappedFile());
    mapped->path_ = path;
    mapped->size_ = file.size();
    if (mapped->size_ == 0) return mapped;  // mmap of 0 bytes is invalid; nothing to map
    void* p = ::mmap(nullptr, static_cast<size_t>(mapped->size_), PROT_READ | PROT_WRITE, MAP_PRIVATE,
                     file.fd(), 0);
    if (p == MAP_FAILED) throw io_error(path, "cannot mmap ", mapped->size_, " bytes");
    mapped->data_ = static_cast<unsigned char*>(p);
    return mapped;  // the mapping stays valid after the descriptor closes
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, static_cast<size_t>(size_));
  }
  unsigned char* data() const { return data_; }
  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  unsigned char* data_ = nullptr;
  int64_t size_ = 0;
  std::string path_;
};

/// Writes `path` atomically: bytes go to a unique temporary file in the same folder (same file
/// system, so rename is atomic), then commit() fsyncs it, renames it over `path` and fsyncs the
/// folder. Destroyed without commit(), it removes the temporary file and leaves `path` untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path) : path_(std::move(path)) {
    temp_path_ = path_ + ".tmp.XXXXXX";
    fd_ = ::mkostemp(temp_path_.data(), O_CLOEXEC);
    if (fd_ < 0) throw io_error(path_, "cannot create a temporary file next to it (", temp_path_, ")");
    ::fchmod(fd_, 0644);  // mkstemp creates 0600; a weights file is normally world-readable
  }
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
  }

  void write(const void* data, int64_t n) {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      const size_t chunk = static_cast<size_t>(std::min<int64_t>(n, int64_t{1} << 30));
      const ssize_t put = ::write(fd_, p, chunk);
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) throw io_error(path_, "write of ", chunk, " bytes to ", temp_path_, " failed");
      p += put;
      n -= put;
      written_ += put;
    }
  }
  int64_t written() const { return written_; }

  void commit() {
    if (::fsync(fd_) != 0) throw io_error(path_, "fsync of ", temp_path_, " failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw io_error(path_, "close of ", temp_path_, " failed");
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
      throw io_error(path_, "rename from ", temp_path_, " failed");
    committed_ = true;
    const size_t slash = path_.find_last_of('/');
    const std::string folder = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) throw io_error(path_, "cannot open its folder ", folder, " to fsync it");
    const int synced = ::fsync(dir);
    ::close(dir);
    if (synced != 0) throw io_error(path_, "fsync of its folder ", folder, " failed");
  }

 private:
  std::string path_, temp_path_;
  int fd_ = -1;
  int64_t written_ = 0;
  bool committed_ = false;
};

/// Reads `count` elements of `source` type at byte `offset` of `file` into backend memory `out`
/// (capacity >= count), converting them to T (policy in io/dtype.hpp). Same type on a host backend:
/// one pread straight into place. Otherwise 1 MiB chunks, so the extra memory stays bounded.
/// The caller has checked count * dtype_size(source) against the file.
template <class T, class B>
void read_converted(const File& file, int64_t offset, DType source, int64_t count, T* out,
                    const std::string& what) {
  const auto item = dtype_size(source);
  if constexpr (B::kHostAccessible) {
    if (source == dtype_of<T>()) {
      file.read_at(offset, out, count * item, what);
      return;
    }
  }
  constexpr int64_t kChunkBytes = int64_t{1} << 20;
  const int64_t per_chunk = std::max<int64_t>(1, kChunkBytes / std::max<int64_t>(item, sizeof(T)));
  std::vector<unsigned char> raw(static_cast<size_t>(std::min(count, per_chunk) * item));
  std::vector<T> host(B::kHostAccessible ? 0 : static_cast<size_t>(std::min(count, per_chunk)));
  for (int64_t first = 0; first < count; first += per_chunk) {
    const int64_t n = std::min(per_chunk, count - first);
    file.read_at(offset + first * item, raw.data(), n * item, what);
    if constexpr (B::kHostAccessible) {
      convert_elements<T>(source, raw.data(), out + first, n, what);
    } else {
      convert_elements<T>(source, raw.data(), host.data(), n, what);
      B::copy_from_host(out + first, host.data(), n);
    }
  }
}

}  // namespace bindery::io
