#include "test_util.hpp"

#include "io_test_util.hpp"

using namespace bindery;
using bindery::testing::require_values;
using namespace bindery::testing::io;

TEST_CASE("npy: every dtype fixture reads with its exact values", "[io][npy]") {
  // Values from tests/reference/make_io_fixtures.py (write_npy_fixtures).
  require_values(io::read_npy<float>(fixture("f4.npy")), Shape{2, 3}, {-1.0, -0.75, -0.5, -0.25, 0.0, 0.25},
                 0.0);
  require_values(io::read_npy<double>(fixture("f8.npy")), Shape{4}, {0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0}, 0.0);
  const auto i8 = io::read_npy<int64_t>(fixture("i8.npy")).to_vector();
  REQUIRE(i8 == std::vector<int64_t>{-(int64_t{1} << 40), -1, 0, int64_t{1} << 62});
  const auto i4 = io::read_npy<int32_t>(fixture("i4.npy"));
  REQUIRE(i4.shape() == Shape{2, 2});
  REQUIRE(i4.to_vector() == std::vector<int32_t>{-5, 6, 7, INT32_MIN});
  REQUIRE(io::read_npy<uint8_t>(fixture("u1.npy")).to_vector() ==
          std::vector<uint8_t>{0, 51, 102, 153, 204, 255});
  REQUIRE(io::read_npy<uint8_t>(fixture("b1.npy")).to_vector() == std::vector<uint8_t>{1, 0, 1});
  require_values(io::read_npy<float>(fixture("b1.npy")), Shape{3}, {1, 0, 1}, 0.0);
  require_values(io::read_npy<float>(fixture("f2.npy")), Shape{4}, {0.5, -2.0, 65504.0, std::ldexp(1.0, -24)},
                 0.0);
  require_values(io::read_npy<double>(fixture("scalar.npy")), Shape{}, {-3.5}, 0.0);
  require_values(io::read_npy<float>(fixture("v2.npy")), Shape{3}, {0, 1, 2}, 0.0);
  // fortran_order True: the same (2, 3) arange, returned in C order.
  const auto fortran = io::read_npy<float>(fixture("fortran.npy"));
  REQUIRE(fortran.is_contiguous());
  require_values(fortran, Shape{2, 3}, {0, 1, 2, 3, 4, 5}, 0.0);
  const io::NpyInfo info = io::inspect_npy(fixture("fortran.npy"));
  REQUIRE(info.fortran_order);
  REQUIRE(info.dtype == io::DType::kF32);
  REQUIRE(info.shape == Shape{2, 3});
}

TEST_CASE("npy: conversions follow the documented policy", "[io][npy]") {
  // integers -> double: exact here; float -> integer: refused; out-of-range integers: refused.
  require_values(io::read_npy<double>(fixture("i4.npy")), Shape{2, 2}, {-5, 6, 7, -2147483648.0}, 0.0);
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<int32_t>(fixture("f4.npy")), ValueError, "f4.npy", "F32",
                                  "I32");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<int32_t>(fixture("i8.npy")), ValueError, "i8.npy",
                                  "element 0");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<uint8_t>(fixture("i4.npy")), ValueError, "i4.npy", "-5");
}

TEST_CASE("npy: write_npy matches numpy byte for byte and round-trips", "[io][npy]") {
  // np.save of the f4 fixture and write_npy of the same values give identical files.
  const auto f4 = io::read_npy<float>(fixture("f4.npy"));
  const std::string path = scratch("f4_copy.npy");
  io::write_npy(path, f4);
  REQUIRE(read_bytes(path) == read_bytes(fixture("f4.npy")));
  io::write_npy(path, io::read_npy<uint8_t>(fixture("u1.npy")));
  REQUIRE(read_bytes(path) == read_bytes(fixture("u1.npy")));
  io::write_npy(path, io::read_npy<double>(fixture("scalar.npy")));
  REQUIRE(read_bytes(path) == read_bytes(fixture("scalar.npy")));

  // A non-contiguous view is written in C order.
  const auto t = Tensor<double>::arange(6).reshape({2, 3}).transpose(0, 1);  // (3, 2)
  io::write_npy(path, t);
  require_values(io::read_npy<double>(path), Shape{3, 2}, {0, 3, 1, 4, 2, 5}, 0.0);
  const auto big = Tensor<int64_t>::from_vector({INT64_MIN, -1, INT64_MAX}, Shape{1, 3, 1});
  io::write_npy(path, big);
  const auto back = io::read_npy<int64_t>(path);
  REQUIRE(back.shape() == Shape{1, 3, 1});
  REQUIRE(back.to_vector() == big.to_vector());
  io::write_npy(path, Tensor<float>::zeros({0, 4}));
  REQUIRE(io::read_npy<float>(path).shape() == Shape{0, 4});
}

namespace {

/// An .npy file with a hand-written header dict and `data_bytes` bytes of zeros.
std::string npy_with_header(const std::string& dict, size_t data_bytes) {
  std::string header = dict;
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  put_le<uint16_t>(out, static_cast<uint16_t>(header.size()));
  return out + header + std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("npy: malformed files give FormatError with file and byte offset", "[io][npy]") {
  const std::string path = scratch("bad.npy");
  SECTION("wrong magic") {
    write_bytes(path, "\x93NUMPX\x01" + std::string(100, ' '));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte 0",
                                    "magic");
  }
  SECTION("header length past the end of the file") {
    std::string bytes = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
    bytes[8] = '\xff';
    bytes[9] = '\x7f';
    write_bytes(path, bytes);
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte 8",
                                    "header length");
  }
  SECTION("data shorter than the shape") {
    write_bytes(path, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte 128",
                                    "needs 24 bytes");
  }
  SECTION("a huge declared shape allocates nothing") {
    write_bytes(
        path, npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }", 8));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<double>(path), FormatError, path.c_str(), "at byte 128",
                                    "8000000000000 bytes");
    write_bytes(
        path,
        npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<double>(path), FormatError, path.c_str(), "at byte 10",
                                    "overflows");
    write_bytes(path, npy_with_header(
                          "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<double>(path), FormatError, path.c_str(), "at byte ",
                                    "overflows int64");
  }
  SECTION("big-endian and structured dtypes are refused clearly") {
    write_bytes(path, npy_with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", 4));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte 20",
                                    "big-endian");
    write_bytes(path,
                npy_with_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte 20",
                                    "structured");
    write_bytes(path, npy_with_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte 20",
                                    "unknown dtype");
  }
  SECTION("unknown or missing keys") {
    write_bytes(path, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte ",
                                    "unexpected key 'x'");
    write_bytes(path, npy_with_header("{'descr': '<f4', 'shape': (1,), }", 4));
    BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(), "at byte ",
                                    "lacks");
  }
}

TEST_CASE("npy: a file truncated at every byte gives a bindery::Error", "[io][npy]") {
  const std::string bytes = read_bytes(fixture("f4.npy"));
  const ScratchFile file(scratch("truncated.npy"), bytes);
  for (size_t n = bytes.size(); n-- > 0;) {
    file.shrink(n);
    INFO("truncated to " << n << " bytes");
    CHECK_THROWS_AS(io::read_npy<float>(file.path()), FormatError);
  }
  CHECK_THROWS_AS(io::read_npy<float>(scratch("does_not_exist.npy")), IoError);
}

TEST_CASE("npy: zero-size shapes load and reshape; huge zero-size shapes are refused (issue 18, 1-2)",
          "[io][npy][hardening]") {
  const std::string path = scratch("zero.npy");
  // (2, 0): reading reshapes to the header's shape, which recursed until the stack overflowed.
  write_bytes(path, npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0), }", 0));
  const auto a = io::read_npy<float>(path);
  REQUIRE(a.shape() == Shape{2, 0});
  REQUIRE(a.reshape({0, 2}).contiguous().clone().shape() == Shape{0, 2});
  write_bytes(path, npy_with_header("{'descr': '<f8', 'fortran_order': True, 'shape': (0, 3, 4), }", 0));
  REQUIRE(io::read_npy<double>(path).shape() == Shape{0, 3, 4});
  // (0, 2^62, 4): 0 elements and 0 bytes, so the byte count passes; its strides do not fit int64.
  write_bytes(
      path,
      npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4), }", 0));
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::read_npy<float>(path), FormatError, path.c_str(),
                                  "(0, 4611686018427387904, 4)", "overflows");
  REQUIRE_THROWS_AS(io::inspect_npy(path), FormatError);
}
