// bindery/datasets/mnist.hpp — MNIST (and any unsigned-byte IDX) files into tensors.
//
// IDX (LeCun's format): a big-endian header, then the values row-major.
//   bytes 0-1: 0, byte 2: element type (0x08 = unsigned byte), byte 3: number of dimensions,
//   then one uint32 extent per dimension, then the data.
//   images: magic 2051 (0x00000803): count, rows, cols, then count * rows * cols pixels (0 = paper).
//   labels: magic 2049 (0x00000801): count, then count bytes.
// Files may be plain or gzipped (detected by the gzip magic 1f 8b, not by the name); zlib inflates
// them as a stream straight into the result, so the 47 MB training images never exist twice in memory.
// Refused with a FormatError "<file>: <where> at byte <offset>: <problem>": a wrong magic or element
// type, a zero row or column extent, data shorter than the header says (the message names the
// first incomplete image / label), bytes after the data, a corrupt gzip stream, images and labels of
// different counts, a label above 9. For gzipped files the offset is in the DECOMPRESSED data (the
// `where` says so): that is the byte of the IDX content a user can inspect with `zcat | xxd`.
//
// Model inputs (mnist_images): pixels p in [0, 255] -> (p / 255 - mean) / std with the usual MNIST
// constants mean 0.1307, std 0.3081 (of the 60,000 training images; the 10,000 test images give
// 0.1325 and 0.3105). Resizing to S x S, two modes:
//   - kPad (the default): centre the image on an S x S canvas of background (pixel 0), cropping
//     centrally when S is smaller. 28 -> 32 adds 2 pixels on each side, as LeNet-5's 32 x 32 input:
//     MNIST digits were size-normalized to a 20 x 20 box and centred by mass in 28 x 28, so padding
//     keeps every stroke exactly as drawn (a bilinear 28 -> 32 blurs 1-pixel strokes and moves their
//     edges by a fraction of a pixel) and a patch grid of 4 or 8 divides 32.
//   - kBilinear: torch.nn.functional.interpolate(mode="bilinear", align_corners=False) on p / 255
//     in float (data/resize.hpp's interpolate_bilinear), for sizes a padding cannot reach nicely.
// Padding happens before normalization: a padded pixel equals the background, -0.1307 / 0.3081.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bindery/backend/cpu.hpp"
#include "bindery/core/error.hpp"
#include "bindery/core/tensor.hpp"
#include "bindery/data/resize.hpp"
#include "bindery/io/file.hpp"

namespace bindery::data {

/// IDX magic numbers of unsigned-byte arrays: images (3-D) and labels (1-D).
inline constexpr uint32_t kIdxImagesMagic = 2051;
inline constexpr uint32_t kIdxLabelsMagic = 2049;
/// The usual MNIST normalization (mean and std of the training pixels scaled to [0, 1]).
inline constexpr double kMnistMean = 0.1307;
inline constexpr double kMnistStd = 0.3081;

/// An MNIST-style set: images (N, rows, cols) of bytes (0 = background, 255 = ink), labels 0..9.
struct MnistSet {
  Tensor<uint8_t, Cpu> images;  // (N, rows, cols)
  std::vector<int64_t> labels;  // (N)
  std::string images_path, labels_path;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t rows() const { return images.defined() ? images.size(1) : 0; }
  int64_t cols() const { return images.defined() ? images.size(2) : 0; }
};

/// The two files of one MNIST split.
struct MnistFiles {
  std::string images, labels;
};

/// How mnist_images turns bytes into model inputs.
enum class MnistResize { kPad, kBilinear };

struct MnistImageOptions {
  int64_t size = 0;  // output S x S; <= 0 keeps rows x cols
  MnistResize resize = MnistResize::kPad;
  int64_t channels = 1;   // 1, or 3 (the gray plane replicated, for RGB encoders)
  bool normalize = true;  // false: p / 255 in [0, 1]
  double mean = kMnistMean;
  double std = kMnistStd;
};

namespace detail {

/// Sequential reader of an IDX file, plain or gzipped; every shortfall is a FormatError naming the
/// file, what was being read and the byte offset. Gzip goes through zlib's inflate rather than its
/// gz* layer: gzread decompresses ahead into its own buffer, so a corrupt block (or a bad CRC) would
/// be reported at the offset of whatever read came first; with inflate straight into the caller's
/// buffer the decompressed offset of an error is exact, and the compressed one is known too.
class IdxStream {
 public:
  explicit IdxStream(const std::string& path) : path_(path), file_(io::File::open(path)) {
    unsigned char magic[2] = {0, 0};
    if (file_.size() >= 2) file_.read_at(0, magic, 2, "gzip magic");
    gzipped_ = magic[0] == 0x1f && magic[1] == 0x8b;
    if (gzipped_) {
      if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK)  // 16: gzip wrapper only
        throw IoError(::bindery::detail::concat(path, ": zlib inflateInit2 failed"));
      z_ready_ = true;
      input_.resize(size_t{1} << 16);
    }
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;
  ~IdxStream() {
    if (z_ready_) inflateEnd(&z_);
  }

  const std::string& path() const { return path_; }
  bool gzipped() const { return gzipped_; }
  int64_t offset() const { return offset_; }

  /// `what` plus a note that offsets count decompressed bytes when the file is gzipped.
  std::string where(const std::string& what) const {
    return gzipped_ ? what + " (offset in the decompressed data)" : what;
  }
  template <class... Parts>
  [[noreturn]] void fail(int64_t offset, const std::string& what, const Parts&... parts) const {
    throw io::format_error(path_, where(what), static_cast<uint64_t>(offset), parts...);
  }

  /// Up to n bytes into dst; fewer only at the end of the data. Corrupt or cut gzip data throws.
  int64_t read_some(unsigned char* dst, int64_t n, const std::string& what) {
    int64_t got = 0;
    if (!gzipped_) {
      got = std::max<int64_t>(0, std::min(n, file_.size() - offset_));
      if (got > 0) file_.read_at(offset_, dst, got, what);
    } else {
      while (got < n && !z_done_) {
        if (z_.avail_in == 0) {
          const int64_t chunk =
              std::min<int64_t>(static_cast<int64_t>(input_.size()), file_.size() - consumed_);
          if (chunk == 0)
            fail(offset_ + got, what, "the gzip data is cut: the file ends at byte ", file_.size(),
                 " before the end of the compressed stream");
          file_.read_at(consumed_, input_.data(), chunk, "gzip data");
          consumed_ += chunk;
          z_.next_in = input_.data();
          z_.avail_in = static_cast<uInt>(chunk);
        }
        const uInt room = static_cast<uInt>(std::min<int64_t>(n - got, int64_t{1} << 30));
        z_.next_out = dst + got;
        z_.avail_out = room;
        const int code = inflate(&z_, Z_NO_FLUSH);
        got += room - z_.avail_out;
        if (code == Z_STREAM_END) {
          // Another gzip member may follow (gzip -c a b > ab.gz); anything else fails its header check.
          if (z_.avail_in == 0 && consumed_ == file_.size()) {
            z_done_ = true;
          } else {
            inflateReset(&z_);
          }
        } else if (code != Z_OK && code != Z_BUF_ERROR) {
          fail(offset_ + got, what, "corrupt gzip data near compressed byte ", consumed_ - z_.avail_in,
               " (zlib: ", z_.msg != nullptr ? z_.msg : "error ",
               z_.msg != nullptr ? "" : std::to_string(code), ")");
        }
      }
    }
    offset_ += got;
    return got;
  }

  /// Exactly n bytes, or a FormatError "<what> at byte <start>: needs n bytes but the data ends at ...".
  void read_exact(unsigned char* dst, int64_t n, const std::string& what) {
    const int64_t start = offset_;
    const int64_t got = read_some(dst, n, what);
    if (got < n) fail(start, what, "needs ", n, " bytes but the data ends at byte ", start + got);
  }

  /// True when no byte follows (for gzip: also checks the rest of the stream and its CRC).
  bool at_end() {
    unsigned char byte = 0;
    const int64_t before = offset_;
    const bool end = read_some(&byte, 1, "end of data") == 0;
    offset_ = before;  // the offset of the first extra byte, for the caller's message
    return end;
  }

 private:
  std::string path_;
  io::File file_;
  bool gzipped_ = false;
  int64_t offset_ = 0;
  // gzip state: the inflate stream, its input buffer, the compressed bytes read so far.
  z_stream z_{};
  bool z_ready_ = false, z_done_ = false;
  std::vector<unsigned char> input_;
  int64_t consumed_ = 0;
};

inline uint32_t idx_be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

/// Reads the magic and extents of an unsigned-byte IDX array of `rank` dimensions.
inline std::vector<int64_t> read_idx_header(IdxStream& in, int64_t rank, const char* kind) {
  std::array<unsigned char, 4> magic{};
  in.read_exact(magic.data(), 4, "IDX magic");
  const uint32_t expected = 0x0800u + static_cast<uint32_t>(rank);
  const uint32_t found = idx_be32(magic.data());
  if (found != expected) {
    if (magic[0] == 0 && magic[1] == 0 && magic[2] != 0x08)
      in.fail(0, "IDX magic", "element type ", int{magic[2]}, " is not unsigned byte (8): not an MNIST ",
              kind, " file");
    in.fail(0, "IDX magic", "magic ", found, ", expected ", expected, " for ", kind,
            (rank == 3 ? " (2049 is a labels file)" : " (2051 is an images file)"));
  }
  std::vector<int64_t> dims(static_cast<size_t>(rank));
  for (int64_t d = 0; d < rank; ++d) {
    std::array<unsigned char, 4> extent{};
    in.read_exact(extent.data(), 4, "IDX extent " + std::to_string(d));
    dims[static_cast<size_t>(d)] = idx_be32(extent.data());
    if (d > 0 && dims[static_cast<size_t>(d)] == 0)
      in.fail(4 + 4 * d, "IDX extent " + std::to_string(d), (d == 1 ? "zero rows" : "zero columns"));
  }
  return dims;
}

/// Reads `items` records of `item_bytes` bytes; a shortfall names the first incomplete record.
inline std::vector<uint8_t> read_idx_records(IdxStream& in, int64_t items, int64_t item_bytes, int64_t total,
                                             const char* noun) {
  int64_t bytes = 0;
  if (!io::checked_mul(items, item_bytes, bytes))
    in.fail(in.offset(), std::string(noun) + " data", items, " x ", item_bytes, " bytes overflow");
  // Grown chunk by chunk, each chunk as large as what was read so far (64 KiB first, 16 MiB at most):
  // a corrupt count cannot make us allocate more than twice what the data really holds.
  constexpr int64_t kFirstChunk = int64_t{64} << 10, kMaxChunk = int64_t{16} << 20;
  std::vector<uint8_t> out;
  const int64_t start = in.offset();
  while (static_cast<int64_t>(out.size()) < bytes) {
    const int64_t have = static_cast<int64_t>(out.size());
    const int64_t n = std::min(std::clamp(have, kFirstChunk, kMaxChunk), bytes - have);
    out.resize(static_cast<size_t>(have + n));
    const int64_t got = in.read_some(out.data() + have, n, std::string(noun) + " data");
    if (got < n) {
      const int64_t end = start + have + got, incomplete = (have + got) / item_bytes;
      int64_t need = 0;  // the header's promise, which may be absurd: checked
      const bool fits = io::checked_mul(total, item_bytes, need) && io::checked_add(need, start, need);
      in.fail(start + incomplete * item_bytes, std::string(noun) + " data", noun, " ", incomplete, " of ",
              total, " is incomplete: the data ends at byte ", end, " (", total, " ", noun, "s of ",
              item_bytes, " bytes need ", fits ? std::to_string(need) : std::string("more than 2^63"), ")");
    }
  }
  return out;
}

inline int64_t checked_limit(int64_t count, int64_t limit) {
  return limit < 0 ? count : std::min(count, limit);
}

}  // namespace detail

/// Reads an IDX images file (magic 2051, plain or gzipped): the first min(limit, N) images (all when
/// limit < 0) -> (n, rows, cols) bytes. Throws IoError (cannot open) or FormatError (see the header).
inline Tensor<uint8_t, Cpu> read_idx_images(const std::string& path, int64_t limit = -1) {
  detail::IdxStream in(path);
  const std::vector<int64_t> dims = detail::read_idx_header(in, 3, "images");
  const int64_t count = dims[0], rows = dims[1], cols = dims[2];
  const int64_t n = detail::checked_limit(count, limit);
  int64_t image_bytes = 0;
  if (!io::checked_mul(rows, cols, image_bytes))
    in.fail(8, "IDX extent 1", rows, " x ", cols, " pixels per image overflow");
  const std::vector<uint8_t> pixels = detail::read_idx_records(in, n, image_bytes, count, "image");
  if (n == count && !in.at_end())
    in.fail(in.offset(), "end of image data", "unexpected bytes after the ", count, " images of ", rows,
            " x ", cols, " the header declares");
  return Tensor<uint8_t, Cpu>::from_vector(pixels, Shape{n, rows, cols});
}

/// Reads an IDX labels file (magic 2049, plain or gzipped): the first min(limit, N) labels, each
/// checked to be 0..max_label. Throws IoError or FormatError (a bad label names its byte).
inline std::vector<int64_t> read_idx_labels(const std::string& path, int64_t limit = -1,
                                            int64_t max_label = 9) {
  detail::IdxStream in(path);
  const std::vector<int64_t> dims = detail::read_idx_header(in, 1, "labels");
  const int64_t count = dims[0];
  const int64_t n = detail::checked_limit(count, limit);
  const int64_t start = in.offset();
  const std::vector<uint8_t> bytes = detail::read_idx_records(in, n, 1, count, "label");
  if (n == count && !in.at_end())
    in.fail(in.offset(), "end of label data", "unexpected bytes after the ", count,
            " labels the header declares");
  std::vector<int64_t> labels(bytes.begin(), bytes.end());
  for (int64_t i = 0; i < n; ++i) {
    if (labels[static_cast<size_t>(i)] > max_label)
      in.fail(start + i, "label data", "label ", i, " is ", labels[static_cast<size_t>(i)], " (expected 0..",
              max_label, ")");
  }
  return labels;
}

/// Reads an MNIST split: images (N, rows, cols) and labels (N); with limit >= 0 only the first
/// `limit` pairs. The two files must declare the same count (FormatError naming both otherwise).
inline MnistSet read_mnist(const std::string& images_path, const std::string& labels_path,
                           int64_t limit = -1) {
  MnistSet set;
  set.images_path = images_path;
  set.labels_path = labels_path;
  // The counts are compared from the headers first, so a mismatch is reported before any data is read.
  int64_t image_count = 0, label_count = 0;
  {
    detail::IdxStream in(images_path);
    image_count = detail::read_idx_header(in, 3, "images")[0];
  }
  {
    detail::IdxStream in(labels_path);
    label_count = detail::read_idx_header(in, 1, "labels")[0];
    if (label_count != image_count)
      in.fail(4, "IDX extent 0", label_count, " labels but ", images_path, " holds ", image_count, " images");
  }
  set.images = read_idx_images(images_path, limit);
  set.labels = read_idx_labels(labels_path, limit);
  return set;
}

/// The images and labels files of `split` ("train" or "t10k") in `dir`, as LeCun's site names them
/// (`train-images-idx3-ubyte`) or with a dot (`train-images.idx3-ubyte`), each plain or `.gz`.
/// Throws IoError listing the names tried when one of the two is missing.
inline MnistFiles find_mnist(const std::string& dir, const std::string& split = "t10k") {
  auto find = [&](const std::string& kind, const std::string& idx) {
    std::string tried;
    for (const char* sep : {"-", "."}) {
      for (const char* ext : {".gz", ""}) {
        const std::string name = split + "-" + kind + sep + idx + "-ubyte" + ext;
        std::error_code error;
        if (std::filesystem::is_regular_file(std::filesystem::path(dir) / name, error))
          return (std::filesystem::path(dir) / name).string();
        tried += (tried.empty() ? "" : ", ") + name;
      }
    }
    throw IoError(
        ::bindery::detail::concat(dir, ": no MNIST ", split, " ", kind, " file (tried ", tried, ")"));
  };
  return {find("images", "idx3"), find("labels", "idx1")};
}

/// find_mnist + read_mnist.
inline MnistSet load_mnist(const std::string& dir, const std::string& split = "t10k", int64_t limit = -1) {
  const MnistFiles files = find_mnist(dir, split);
  return read_mnist(files.images, files.labels, limit);
}

/// Model inputs of the images `indices` of `images` (N, rows, cols) -> (len, channels, S, S), or
/// (len, channels, rows, cols) when options.size <= 0. See the header for the resize modes.
template <class T = float, class B = Cpu>
Tensor<T, B> mnist_images(const Tensor<uint8_t, Cpu>& images, std::span<const int64_t> indices,
                          const MnistImageOptions& options = {}) {
  static_assert(std::is_floating_point_v<T>, "mnist_images: T must be float or double");
  BINDERY_CHECK(images.defined() && images.rank() == 3, ShapeError, "mnist_images: images of shape ",
                images.shape(), " must be (N, rows, cols)");
  BINDERY_CHECK(options.channels == 1 || options.channels == 3, ValueError, "mnist_images: channels ",
                options.channels, " must be 1 or 3");
  BINDERY_CHECK(!options.normalize || options.std > 0.0, ValueError, "mnist_images: std ", options.std,
                " must be positive");
  const int64_t count = images.size(0), rows = images.size(1), cols = images.size(2);
  for (int64_t index : indices)
    BINDERY_CHECK(index >= 0 && index < count, IndexError, "mnist_images: index ", index,
                  " out of range for images of shape ", images.shape());
  const int64_t out_rows = options.size > 0 ? options.size : rows;
  const int64_t out_cols = options.size > 0 ? options.size : cols;
  const int64_t n = static_cast<int64_t>(indices.size()), channels = options.channels;
  const int64_t plane = out_rows * out_cols;
  const Tensor<uint8_t, Cpu> source = images.contiguous();
  const uint8_t* pixels = source.data();
  const T mean = options.normalize ? static_cast<T>(options.mean) : T(0);
  const T std = options.normalize ? static_cast<T>(options.std) : T(1);
  // (p / 255 - mean) / std, as torchvision's ToTensor + Normalize (sub_ then div_) compute it.
  auto value = [&](T unit) { return (unit - mean) / std; };
  std::array<T, 256> table{};  // value(p / 255) for every byte: the same numbers, one division each
  for (int p = 0; p < 256; ++p) table[static_cast<size_t>(p)] = value(static_cast<T>(p) / T(255));
  const Shape shape{n, channels, out_rows, out_cols};
  // A host backend gets the values written in place; another one gets them copied from host memory.
  Tensor<T, B> result;
  std::vector<T> host;
  T* out = nullptr;
  if constexpr (B::kHostAccessible) {
    result = Tensor<T, B>::empty(shape);
    out = result.data();
  } else {
    host.resize(static_cast<size_t>(shape.numel()));
    out = host.data();
  }
  const bool bilinear = options.resize == MnistResize::kBilinear && (out_rows != rows || out_cols != cols);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* src = pixels + indices[static_cast<size_t>(i)] * rows * cols;
    T* dst = out + i * channels * plane;
    if (bilinear) {
      std::vector<float> unit(static_cast<size_t>(rows * cols));
      for (int64_t k = 0; k < rows * cols; ++k)
        unit[static_cast<size_t>(k)] = static_cast<float>(src[k]) / 255.0f;
      const std::vector<float> resized = interpolate_bilinear(unit, 1, rows, cols, out_rows, out_cols);
      for (int64_t k = 0; k < plane; ++k) dst[k] = value(static_cast<T>(resized[static_cast<size_t>(k)]));
    } else {
      // Centre on the canvas: offset (out - in) / 2 (the extra pixel of an odd difference goes to
      // the bottom / right); a negative offset crops.
      const int64_t top = (out_rows - rows) / 2, left = (out_cols - cols) / 2;
      const T background = table[0];
      for (int64_t y = 0; y < out_rows; ++y) {
        const int64_t sy = y - top;
        for (int64_t x = 0; x < out_cols; ++x) {
          const int64_t sx = x - left;
          const bool inside = sy >= 0 && sy < rows && sx >= 0 && sx < cols;
          dst[y * out_cols + x] = inside ? table[src[sy * cols + sx]] : background;
        }
      }
    }
    for (int64_t c = 1; c < channels; ++c) std::copy(dst, dst + plane, dst + c * plane);
  }
  if constexpr (!B::kHostAccessible) result = Tensor<T, B>::from_vector(host, shape);
  return result;
}

/// Model inputs of every image of `images` (N, rows, cols) -> (N, channels, S, S).
template <class T = float, class B = Cpu>
Tensor<T, B> mnist_images(const Tensor<uint8_t, Cpu>& images, const MnistImageOptions& options = {}) {
  BINDERY_CHECK(images.defined() && images.rank() == 3, ShapeError, "mnist_images: images of shape ",
                images.shape(), " must be (N, rows, cols)");
  std::vector<int64_t> all(static_cast<size_t>(images.size(0)));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  return mnist_images<T, B>(images, std::span<const int64_t>(all), options);
}

/// The labels of `indices` (a mini-batch's targets).
inline std::vector<int64_t> mnist_labels(const MnistSet& set, std::span<const int64_t> indices) {
  std::vector<int64_t> out;
  out.reserve(indices.size());
  for (int64_t index : indices) {
    BINDERY_CHECK(index >= 0 && index < set.size(), IndexError, "mnist_labels: index ", index,
                  " out of range for ", set.size(), " labels");
    out.push_back(set.labels[static_cast<size_t>(index)]);
  }
  return out;
}

}  // namespace bindery::data
