// MNIST IDX reading: the shared t10k files (facts checked independently with Python's gzip + struct),
// tiny IDX files written here (plain and gzipped) with exact values, every error, and the float inputs.
#include "test_util.hpp"

#include <bindery/datasets/mnist.hpp>

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

using namespace std::string_literals;
using bindery::FormatError;
using bindery::IoError;
using bindery::Shape;
using bindery::data::MnistImageOptions;
using bindery::data::MnistResize;
using bindery::data::read_idx_images;
using bindery::data::read_idx_labels;
using bindery::data::read_mnist;

namespace {

using bindery::testing::TempDir;

/// The shared MNIST folder, or "" (with a warning: the test then skips) when it is absent.
std::string shared_mnist() {
  const std::string dir = std::string(BINDERY_SHARED_DATA) + "/mnist";
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    WARN("SKIPPED: " << dir << " not found (configure with -DBINDERY_SHARED_DATA=...)");
    return "";
  }
  return dir;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string idx_images(uint32_t count, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& pixels,
                       uint32_t magic = 2051) {
  return be32(magic) + be32(count) + be32(rows) + be32(cols) + std::string(pixels.begin(), pixels.end());
}
std::string idx_labels(uint32_t count, const std::vector<uint8_t>& labels, uint32_t magic = 2049) {
  return be32(magic) + be32(count) + std::string(labels.begin(), labels.end());
}
std::string write_plain(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
  return path;
}
std::string write_gzip(const std::string& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
  return path;
}
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Three 2 x 3 images and their labels, the values chosen so that no two pixels are equal.
const std::vector<uint8_t> kPixels = {0, 1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 60, 255, 254, 253, 128, 127, 126};
const std::vector<uint8_t> kLabels = {3, 0, 9};

}  // namespace

TEST_CASE("mnist: the shared t10k files", "[data][mnist]") {
  const std::string dir = shared_mnist();
  if (dir.empty()) return;
  const bindery::data::MnistFiles files = bindery::data::find_mnist(dir, "t10k");
  CHECK(files.images == dir + "/t10k-images-idx3-ubyte.gz");
  CHECK(files.labels == dir + "/t10k-labels-idx1-ubyte.gz");
  const bindery::data::MnistSet set = bindery::data::load_mnist(dir, "t10k");
  REQUIRE(set.size() == 10000);
  REQUIRE(set.images.shape() == Shape{10000, 28, 28});
  CHECK(set.rows() == 28);
  CHECK(set.cols() == 28);
  CHECK(std::vector<int64_t>(set.labels.begin(), set.labels.begin() + 8) ==
        std::vector<int64_t>{7, 2, 1, 0, 4, 1, 4, 9});
  // Facts computed independently with Python (gzip + struct) on the same files.
  std::vector<int64_t> histogram(10, 0);
  for (int64_t label : set.labels) ++histogram[static_cast<size_t>(label)];
  CHECK(histogram == std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  const std::vector<uint8_t> pixels = set.images.to_vector();
  auto image_sum = [&](int64_t i) {
    return std::accumulate(pixels.begin() + i * 784, pixels.begin() + (i + 1) * 784, int64_t{0});
  };
  CHECK(image_sum(0) == 18454);
  CHECK(image_sum(1) == 28850);
  CHECK(image_sum(9999) == 41833);
  CHECK(std::accumulate(pixels.begin(), pixels.end(), int64_t{0}) == 264923200);
  CHECK(std::count_if(pixels.begin(), pixels.begin() + 784, [](uint8_t p) { return p != 0; }) == 116);
  CHECK(std::vector<uint8_t>(pixels.begin() + 7 * 28 + 6, pixels.begin() + 7 * 28 + 12) ==
        std::vector<uint8_t>{84, 185, 159, 151, 60, 36});
  CHECK(crc32(0, pixels.data(), static_cast<unsigned>(pixels.size())) == 3838467927u);
  std::vector<uint8_t> label_bytes(set.labels.begin(), set.labels.end());
  CHECK(crc32(0, label_bytes.data(), static_cast<unsigned>(label_bytes.size())) == 4001760473u);

  // limit: the first 100 pairs, identical to the full read's.
  const bindery::data::MnistSet head = read_mnist(files.images, files.labels, 100);
  REQUIRE(head.images.shape() == Shape{100, 28, 28});
  CHECK(head.images.to_vector() == std::vector<uint8_t>(pixels.begin(), pixels.begin() + 100 * 784));
  CHECK(head.labels == std::vector<int64_t>(set.labels.begin(), set.labels.begin() + 100));

  // Model inputs: 28 -> 32 by padding, normalized with the MNIST constants.
  const std::vector<int64_t> first = {0, 1};
  const auto x = bindery::data::mnist_images<float>(set.images, first, MnistImageOptions{.size = 32});
  REQUIRE(x.shape() == Shape{2, 1, 32, 32});
  const std::vector<float> v = x.to_vector();
  const float background = (0.0f - 0.1307f) / 0.3081f;
  CHECK(v[0] == background);
  CHECK(v[31 * 32 + 31] == background);
  CHECK(v[(7 + 2) * 32 + (6 + 2)] == (84.0f / 255.0f - 0.1307f) / 0.3081f);
  double sum0 = 0.0;
  for (int64_t k = 0; k < 1024; ++k) sum0 += v[static_cast<size_t>(k)];
  CHECK(sum0 == Approx((18454.0 / 255.0 - 1024 * 0.1307) / 0.3081).epsilon(1e-5));
  // The whole set: the mean pixel is 0.1325146 (Python), so the normalized mean is 0.0059547.
  const auto all = bindery::data::mnist_images<float>(set.images);
  REQUIRE(all.shape() == Shape{10000, 1, 28, 28});
  double total = 0.0;
  for (float value : all.to_vector()) total += value;
  CHECK(total / 7840000.0 == Approx((0.13251460584233693 - 0.1307) / 0.3081).margin(1e-6));
}

TEST_CASE("mnist: generated IDX files, plain and gzipped", "[data][mnist]") {
  const TempDir tmp;
  const std::string images = idx_images(3, 2, 3, kPixels), labels = idx_labels(3, kLabels);
  for (const bool gz : {false, true}) {
    INFO("gzipped: " << gz);
    const std::string suffix = gz ? ".gz" : "";
    const std::string image_path =
        gz ? write_gzip(tmp.file("a-images.gz"), images) : write_plain(tmp.file("a-images"), images);
    const std::string label_path =
        gz ? write_gzip(tmp.file("a-labels.gz"), labels) : write_plain(tmp.file("a-labels"), labels);
    const bindery::data::MnistSet set = read_mnist(image_path, label_path);
    REQUIRE(set.images.shape() == Shape{3, 2, 3});
    CHECK(set.images.to_vector() == kPixels);
    CHECK(set.labels == std::vector<int64_t>{3, 0, 9});
    CHECK(set.images_path == image_path);
    const bindery::data::MnistSet two = read_mnist(image_path, label_path, 2);
    REQUIRE(two.images.shape() == Shape{2, 2, 3});
    CHECK(two.images.to_vector() == std::vector<uint8_t>(kPixels.begin(), kPixels.begin() + 12));
    CHECK(two.labels == std::vector<int64_t>{3, 0});
    CHECK(read_mnist(image_path, label_path, 0).size() == 0);
    CHECK(bindery::data::mnist_labels(set, std::vector<int64_t>{2, 0}) == std::vector<int64_t>{9, 3});
  }

  // A gzip file of two members (gzip -c a b > ab.gz) is one stream.
  const std::string first = read_bytes(write_gzip(tmp.file("part1.gz"), images.substr(0, 20)));
  const std::string second = read_bytes(write_gzip(tmp.file("part2.gz"), images.substr(20)));
  CHECK(read_idx_images(write_plain(tmp.file("two-members.gz"), first + second)).to_vector() == kPixels);

  // find_mnist: LeCun's names, plain or .gz, and the dotted variant.
  write_plain(tmp.file("train-images-idx3-ubyte"), images);
  write_gzip(tmp.file("train-labels-idx1-ubyte.gz"), labels);
  write_gzip(tmp.file("t10k-images.idx3-ubyte.gz"), images);
  const bindery::data::MnistFiles train = bindery::data::find_mnist(tmp.path.string(), "train");
  CHECK(train.images == tmp.file("train-images-idx3-ubyte"));
  CHECK(train.labels == tmp.file("train-labels-idx1-ubyte.gz"));
  CHECK(bindery::data::load_mnist(tmp.path.string(), "train").labels == std::vector<int64_t>{3, 0, 9});
  BINDERY_REQUIRE_THROWS_WITH_ALL(bindery::data::find_mnist(tmp.path.string(), "t10k"), IoError,
                                  tmp.path.string(), "t10k labels"s, "t10k-labels-idx1-ubyte.gz"s);
}

TEST_CASE("mnist: float inputs, padding, cropping, bilinear, channels", "[data][mnist]") {
  const auto images = bindery::Tensor<uint8_t>::from_vector(kPixels, Shape{3, 2, 3});
  // Raw [0, 1] values, image 1 padded to 4 x 4: top (4 - 2) / 2 = 1, left (4 - 3) / 2 = 0.
  const std::vector<int64_t> one = {1};
  MnistImageOptions raw{.size = 4, .normalize = false};
  const auto padded = bindery::data::mnist_images<double>(images, one, raw);
  const double a = 1.0 / 255.0;
  bindery::testing::require_values(padded, Shape{1, 1, 4, 4},
                                   {0, 0, 0, 0,                 //
                                    10 * a, 20 * a, 30 * a, 0,  //
                                    40 * a, 50 * a, 60 * a, 0,  //
                                    0, 0, 0, 0},
                                   0.0);
  // Crop to 1 x 1 keeps row (2 - 1) / 2 = 0, column (3 - 1) / 2 = 1; three channels, normalized.
  const auto cropped =
      bindery::data::mnist_images<float>(images, MnistImageOptions{.size = 1, .channels = 3});
  const float m = 0.1307f, s = 0.3081f;
  bindery::testing::require_values(cropped, Shape{3, 3, 1, 1},
                                   {(1 / 255.f - m) / s, (1 / 255.f - m) / s, (1 / 255.f - m) / s,
                                    (20 / 255.f - m) / s, (20 / 255.f - m) / s, (20 / 255.f - m) / s,
                                    (254 / 255.f - m) / s, (254 / 255.f - m) / s, (254 / 255.f - m) / s},
                                   0.0);
  // size <= 0 keeps 2 x 3.
  CHECK(bindery::data::mnist_images<float>(images).shape() == Shape{3, 1, 2, 3});
  // Bilinear 2 x 2 -> 4 x 4 (torch, align_corners=False): taps per axis [a, .75a+.25b, .25a+.75b, b].
  const auto square = bindery::Tensor<uint8_t>::from_vector({0, 255, 255, 255}, Shape{1, 2, 2});
  const auto up = bindery::data::mnist_images<float>(
      square, MnistImageOptions{.size = 4, .resize = MnistResize::kBilinear, .normalize = false});
  bindery::testing::require_values(
      up, Shape{1, 1, 4, 4}, {0, .25, .75, 1, .25, .4375, .8125, 1, .75, .8125, .9375, 1, 1, 1, 1, 1}, 1e-7);
  BINDERY_REQUIRE_THROWS_WITH_ALL(bindery::data::mnist_images<float>(images, std::vector<int64_t>{3}),
                                  bindery::IndexError, "index 3"s, "(3, 2, 3)"s);
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      bindery::data::mnist_images<float>(images, MnistImageOptions{.channels = 2}), bindery::ValueError,
      "channels 2"s);
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      bindery::data::mnist_images<float>(bindery::Tensor<uint8_t>::zeros(Shape{2, 3})), bindery::ShapeError,
      "(2, 3)"s);
}

TEST_CASE("mnist: malformed IDX files name the file and the byte offset", "[data][mnist]") {
  const TempDir tmp;
  const std::string images = idx_images(3, 2, 3, kPixels), labels = idx_labels(3, kLabels);
  const std::string good_images = write_plain(tmp.file("good-images"), images);
  const std::string good_labels = write_plain(tmp.file("good-labels"), labels);

  // Wrong magic: a labels file read as images, and the reverse; an element type other than ubyte.
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(good_labels), FormatError, good_labels, "at byte 0"s,
                                  "magic 2049, expected 2051"s);
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_labels(good_images), FormatError, good_images, "at byte 0"s,
                                  "magic 2051, expected 2049"s);
  const std::string floats = write_plain(tmp.file("floats"), idx_images(3, 2, 3, kPixels, 0x0D03));
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(floats), FormatError, floats, "at byte 0"s,
                                  "element type 13"s);

  // Truncated at several offsets: in the magic, in an extent, inside image 1, inside the labels.
  struct Cut {
    size_t keep;
    std::string offset, text;
  };
  for (const Cut& cut :
       {Cut{2, "at byte 0", "needs 4 bytes but the data ends at byte 2"},
        Cut{10, "at byte 8", "needs 4 bytes but the data ends at byte 10"},
        Cut{16 + 6 + 4, "at byte 22", "image 1 of 3 is incomplete: the data ends at byte 26"},
        Cut{16 + 18 - 1, "at byte 28", "image 2 of 3 is incomplete: the data ends at byte 33"},
        Cut{16, "at byte 16", "image 0 of 3 is incomplete: the data ends at byte 16"}}) {
    INFO("kept " << cut.keep << " bytes");
    const std::string plain = write_plain(tmp.file("cut"), images.substr(0, cut.keep));
    BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(plain), FormatError, plain, cut.offset, cut.text);
    const std::string gz = write_gzip(tmp.file("cut.gz"), images.substr(0, cut.keep));
    BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(gz), FormatError, gz, cut.offset, cut.text,
                                    "decompressed"s);
  }
  const std::string short_labels = write_plain(tmp.file("short-labels"), labels.substr(0, 9));
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_labels(short_labels), FormatError, short_labels, "at byte 9"s,
                                  "label 1 of 3 is incomplete"s);
  // The gzip file itself cut short (its IDX content is then cut too, or its trailer is missing).
  const std::string whole_gz = read_bytes(write_gzip(tmp.file("whole.gz"), images));
  for (const size_t keep : {whole_gz.size() - 4, whole_gz.size() / 2}) {
    const std::string cut_gz = write_plain(tmp.file("cut-stream.gz"), whole_gz.substr(0, keep));
    BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(cut_gz), FormatError, cut_gz, "at byte"s,
                                    "decompressed"s);
  }
  // A corrupt CRC: found at the end of the stream, where the decompressed data ends (byte 34).
  std::string bad_crc = whole_gz;
  bad_crc[bad_crc.size() - 8] = static_cast<char>(bad_crc[bad_crc.size() - 8] ^ 0x5A);
  const std::string crc_path = write_plain(tmp.file("crc.gz"), bad_crc);
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(crc_path), FormatError, crc_path, "at byte 34"s,
                                  "corrupt gzip data"s, "incorrect data check"s);
  // Garbage after the gzip stream fails the next member's header check.
  const std::string garbage = write_plain(tmp.file("garbage.gz"), whole_gz + "garbage");
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(garbage), FormatError, garbage, "corrupt gzip data"s);
  // Bytes after the declared data.
  const std::string longer = write_plain(tmp.file("longer"), images + "x");
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(longer), FormatError, longer, "at byte 34"s,
                                  "unexpected bytes after the 3 images"s);
  // Zero rows / columns.
  const std::string no_rows = write_plain(tmp.file("no-rows"), idx_images(3, 0, 3, {}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(no_rows), FormatError, no_rows, "at byte 8"s, "zero rows"s);
  const std::string no_cols = write_plain(tmp.file("no-cols"), idx_images(3, 2, 0, {}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(no_cols), FormatError, no_cols, "at byte 12"s,
                                  "zero columns"s);
  // Counts that disagree: named in the labels file's count field, with the images file.
  const std::string two_labels = write_gzip(tmp.file("two-labels.gz"), idx_labels(2, {3, 0}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_mnist(good_images, two_labels), FormatError, two_labels, "at byte 4"s,
                                  "2 labels but"s, good_images, "holds 3 images"s);
  // A label above 9: its own byte.
  const std::string ten = write_plain(tmp.file("ten"), idx_labels(3, {3, 10, 9}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_labels(ten), FormatError, ten, "at byte 9"s, "label 1 is 10"s);
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_mnist(good_images, ten), FormatError, ten, "at byte 9"s);
  // Missing file: an IoError naming it.
  BINDERY_REQUIRE_THROWS_WITH_ALL(read_idx_images(tmp.file("absent")), IoError, tmp.file("absent"));
}
