#include "test_util.hpp"

#include "io_test_util.hpp"

#include <filesystem>

using namespace bindery;
using namespace bindery::testing::io;

namespace {

/// The state_dict fixture's names (make_io_fixtures.py), each with an expected/<name>.npy.
const std::vector<std::string> kNames = {
    "linear.weight", "linear.bias", "f64",    "f16",        "bf16",        "i64",
    "i32",           "u8",          "flag",   "transposed", "view_offset", "shared_full",
    "shared_row",    "shared_col",  "scalar", "empty",      "param"};

Tensor<double> expected(const std::string& name) {
  return io::read_npy<double>(fixture("expected/" + name + ".npy"));
}

/// u64 header size + header (padded with spaces to a multiple of 8 when `pad`) + data.
std::string st_bytes(const std::string& header, const std::string& data, bool pad = true) {
  std::string h = header;
  if (pad) h.append((8 - h.size() % 8) % 8, ' ');
  std::string out;
  put_le<uint64_t>(out, h.size());
  return out + h + data;
}

}  // namespace

TEST_CASE("safetensors: the reference-written fixture loads with exact values", "[io][safetensors]") {
  const io::SafetensorsFile file = io::SafetensorsFile::open(fixture("state_dict.safetensors"));
  REQUIRE(file.tensors().size() == kNames.size());
  REQUIRE(file.metadata() ==
          std::map<std::string, std::string>{{"format", "pt"}, {"source", "make_io_fixtures.py"}});
  REQUIRE(file.info("bf16").dtype == io::DType::kBF16);
  REQUIRE(file.info("flag").dtype == io::DType::kBool);
  REQUIRE(file.info("transposed").shape == Shape{4, 3});
  for (const std::string& name : kNames) {
    INFO(name);
    const Tensor<double> want = expected(name);
    const Tensor<double> got = file.load<double>(name);
    REQUIRE(got.shape() == want.shape());
    REQUIRE(got.to_vector() == want.to_vector());  // bit-exact: every value is exact in double
  }
  // As float: F64 rounds to nearest (1e300 -> inf), everything else is exact.
  const auto f64 = file.load<float>("f64").to_vector();
  REQUIRE(f64[0] == static_cast<float>(1.0 / 3.0));
  REQUIRE(std::isinf(f64[2]));
  REQUIRE(file.load<int64_t>("i64").to_vector() == std::vector<int64_t>{-7, int64_t{1} << 40, 0});
  BINDERY_REQUIRE_THROWS_WITH_ALL(file.load<int32_t>("f16"), ValueError, "state_dict.safetensors", "'f16'",
                                  "F16");
  BINDERY_REQUIRE_THROWS_WITH_ALL(file.info("nope"), IndexError, "nope");

  const auto all = io::load_safetensors<float>(fixture("state_dict.safetensors"));
  REQUIRE(all.size() == kNames.size());
  REQUIRE(all.front().first == "i64");  // data order: the reference writer puts 8-byte dtypes first
}

TEST_CASE("safetensors: fp32 on Cpu is zero-copy and keeps the mapping alive", "[io][safetensors]") {
  Tensor<float> weight;
  {
    const io::SafetensorsFile file = io::SafetensorsFile::open(fixture("state_dict.safetensors"));
    REQUIRE(file.is_zero_copy<float>("linear.weight"));
    REQUIRE_FALSE(file.is_zero_copy<double>("linear.weight"));  // converted
    REQUIRE_FALSE(file.is_zero_copy<float>("bf16"));
    weight = file.load<float>("linear.weight");
    REQUIRE(weight.storage_capacity() == 6);
  }  // the file object is gone; the tensor still owns the mapping
  REQUIRE(weight.to_vector() == expected("linear.weight").cast<float>().to_vector());
  // The mapping is private: writing to the tensor never reaches the file.
  weight.fill_(7.f);
  REQUIRE(weight.at({0, 0}) == 7.f);
  const auto again =
      io::SafetensorsFile::open(fixture("state_dict.safetensors")).load<float>("linear.weight");
  REQUIRE(again.at({0, 0}) == -0.25f);
}

TEST_CASE("safetensors: save/load round trips, deterministic and identical to the reference writer",
          "[io][safetensors]") {
  // Re-saving the single-dtype fixture reproduces the reference writer's bytes exactly.
  const io::SafetensorsFile reference = io::SafetensorsFile::open(fixture("f32_only.safetensors"));
  const auto tensors = io::load_safetensors<float>(fixture("f32_only.safetensors"));
  const std::string path = scratch("resaved.safetensors");
  io::save_safetensors(path, tensors, reference.metadata());
  REQUIRE(read_bytes(path) == read_bytes(fixture("f32_only.safetensors")));

  // Views are written in C order; double and int64 round-trip bit-exactly; input order is irrelevant.
  Philox rng(7);
  const auto a = Tensor<double>::normal({3, 4}, rng);
  const std::vector<std::pair<std::string, Tensor<double>>> named = {
      {"b.transposed", a.transpose(0, 1)},
      {"a.scalar", Tensor<double>::scalar(-2.5)},
      {"c.empty", Tensor<double>::zeros({0, 2})}};
  io::save_safetensors(path, named, {{"step", "12"}});
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  REQUIRE(file.keys() == std::vector<std::string>{"a.scalar", "b.transposed", "c.empty"});
  REQUIRE(file.metadata().at("step") == "12");
  REQUIRE(file.load<double>("b.transposed").to_vector() == a.transpose(0, 1).to_vector());
  REQUIRE(file.load<double>("a.scalar").item() == -2.5);
  REQUIRE(file.load<double>("c.empty").shape() == Shape{0, 2});
  const std::string first = read_bytes(path);
  io::save_safetensors(path,
                       std::vector<std::pair<std::string, Tensor<double>>>{named[2], named[0], named[1]},
                       {{"step", "12"}});
  REQUIRE(read_bytes(path) == first);

  const auto ints = Tensor<int64_t>::from_vector({INT64_MIN, 0, INT64_MAX});
  io::save_safetensors(path, std::vector<std::pair<std::string, Tensor<int64_t>>>{{"i", ints}});
  REQUIRE(io::SafetensorsFile::open(path).load<int64_t>("i").to_vector() == ints.to_vector());
}

TEST_CASE("safetensors: writes are atomic and refuse bad names", "[io][safetensors]") {
  const std::string path = scratch("atomic/model.safetensors");
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::vector<std::pair<std::string, Tensor<float>>> one = {{"w", Tensor<float>::ones({2})}};
  io::save_safetensors(path, one);
  // Only the target remains: the temporary file was renamed over it.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    (void)entry;
    ++files;
  }
  REQUIRE(files == 1);
  // A failing write leaves the previous file intact and no temporary behind.
  const std::string before = read_bytes(path);
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      io::save_safetensors(
          path, std::vector<std::pair<std::string, Tensor<float>>>{{"w", Tensor<float>::ones({1})},
                                                                   {"w", Tensor<float>::ones({1})}}),
      ValueError, "duplicate tensor name 'w'");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::save_safetensors(path,
                                                       std::vector<std::pair<std::string, Tensor<float>>>{
                                                           {"__metadata__", Tensor<float>::ones({1})}}),
                                  ValueError, "reserved");
  REQUIRE(read_bytes(path) == before);
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::save_safetensors(scratch("no/such/folder/x.safetensors"), one), IoError,
                                  "no/such/folder/x.safetensors");
}

TEST_CASE("safetensors: malformed files give FormatError with file and byte offset", "[io][safetensors]") {
  const std::string path = scratch("bad.safetensors");
  const auto open = [&] { return io::SafetensorsFile::open(path); };
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  SECTION("file shorter than the header size") {
    write_bytes(path, "\x10\x00\x00");
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 0",
                                    "shorter than the 8-byte");
  }
  SECTION("header size past the end of the file") {
    std::string bytes = st_bytes(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]}})", std::string(8, '\0'));
    bytes[0] = '\x00';
    bytes[1] = '\x01';  // 256 > file size
    write_bytes(path, bytes);
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 0",
                                    "runs past the end of the file");
  }
  SECTION("header size above 100 MB (a 4 GB JSON header is never read)") {
    std::string bytes;
    put_le<uint64_t>(bytes, uint64_t{4} << 30);
    write_bytes(path, bytes + "{}");
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 0",
                                    "exceeds the 100000000-byte limit");
  }
  SECTION("header that is not a JSON object") {
    write_bytes(path, st_bytes("[1, 2]", ""));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 8", "must start with '{'");
    write_bytes(path, st_bytes(R"({"a": })", ""));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 14", "invalid JSON");
    write_bytes(path, st_bytes("{\"a\xff\": 1}", ""));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte ", "invalid JSON");
  }
  SECTION("duplicate keys") {
    write_bytes(path, st_bytes(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"a":{)" + f32x2 +
                                   R"(,"data_offsets":[8,16]}})",
                               std::string(16, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 8", "duplicate key \"a\"");
  }
  SECTION("unknown dtype") {
    write_bytes(path,
                st_bytes(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 8", "'a'",
                                    "unknown dtype \"F33\"");
  }
  SECTION("negative or fractional extents and offsets") {
    write_bytes(path,
                st_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 8", "non-negative integers");
    write_bytes(
        path, st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8]}})", std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 8", "non-negative integers");
  }
  SECTION("shape x dtype size differs from the data_offsets span") {
    write_bytes(path,
                st_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 64", "'a'", "needs 12 bytes");
  }
  SECTION("huge declared shapes: overflow is caught, nothing is allocated") {
    write_bytes(path,
                st_bytes(R"({"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
                         std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte ", "overflows 64-bit sizes");
    write_bytes(path,
                st_bytes(R"({"a":{"dtype":"F64","shape":[1000000000000],"data_offsets":[0,8000000000000]}})",
                         std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte ",
                                    "buffer after the header holds 8");
  }
  SECTION("overlapping offsets (aliasing tensors)") {
    write_bytes(path, st_bytes(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                                   R"(,"data_offsets":[4,12]}})",
                               std::string(12, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 124", "'b'", "overlap");
    write_bytes(path, st_bytes(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                                   R"(,"data_offsets":[0,8]}})",
                               std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte ", "'b'", "overlap");
  }
  SECTION("a hole between tensors") {
    write_bytes(path, st_bytes(R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]},"b":{)" + f32x2 +
                                   R"(,"data_offsets":[12,20]}})",
                               std::string(20, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 132", "'b'", "hole");
  }
  SECTION("reversed offsets") {
    write_bytes(path, st_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{)" + f32x2 +
                                   R"(,"data_offsets":[8,0]}})",
                               std::string(8, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte ", "'b'");
  }
  SECTION("bytes the header does not index (polyglot) and a truncated buffer") {
    const std::string header = R"({"a":{)" + f32x2 + R"(,"data_offsets":[0,8]}})";
    write_bytes(path, st_bytes(header, std::string(9, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 72", "unindexed");
    write_bytes(path, st_bytes(header, std::string(7, '\0')));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 71", "holds 7", "truncated");
  }
  SECTION("__metadata__ must map strings to strings") {
    write_bytes(path, st_bytes(R"({"__metadata__":{"x":1}})", ""));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 8", "__metadata__[\"x\"]");
  }
  SECTION("deep nesting is refused before it costs anything") {
    write_bytes(path, st_bytes("{\"a\":" + std::string(5000, '[') + std::string(5000, ']') + "}", ""));
    BINDERY_REQUIRE_THROWS_WITH_ALL(open(), FormatError, path.c_str(), "at byte 8", "nested");
  }
}

TEST_CASE("safetensors: a file truncated at every byte gives a FormatError", "[io][safetensors]") {
  const std::string bytes = read_bytes(fixture("state_dict.safetensors"));
  const ScratchFile file(scratch("truncated.safetensors"), bytes);
  for (size_t n = bytes.size(); n-- > 0;) {
    file.shrink(n);
    INFO("truncated to " << n << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(io::SafetensorsFile::open(file.path()), FormatError);
  }
}

TEST_CASE("safetensors: every single-byte change gives a valid file or a FormatError", "[io][safetensors]") {
  const std::string bytes = read_bytes(fixture("state_dict.safetensors"));
  const ScratchFile file(scratch("corrupted.safetensors"), bytes);
  int refused = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (const char value : {'\xff', '\x00', '9'}) {
      if (bytes[i] == value) continue;
      file.poke(i, value);
      INFO("byte " << i << " set to " << int(value));
      try {
        const io::SafetensorsFile st = io::SafetensorsFile::open(file.path());
        for (const auto& t : st.tensors()) (void)st.load<double>(t.name);
      } catch (const FormatError&) {
        ++refused;
      }
    }
    file.poke(i, bytes[i]);
  }
  CHECK(refused > 0);
}

TEST_CASE("safetensors: 16-bit tensors load, convert and save bit-exactly", "[io][safetensors][float16]") {
  const io::SafetensorsFile file = io::SafetensorsFile::open(fixture("state_dict.safetensors"));
  // The reference's bf16 / f16 tensors load as 16-bit tensors with their exact values.
  const Tensor<bfloat16> bf16 = file.load<bfloat16>("bf16");
  const Tensor<float16> f16 = file.load<float16>("f16");
  auto same_values = [](const std::vector<double>& got, const std::vector<double>& want) {
    if (got.size() != want.size()) return false;
    for (size_t i = 0; i < got.size(); ++i) {
      if (!(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])))) return false;
    }
    return true;
  };
  REQUIRE(same_values(bf16.cast<double>().to_vector(), expected("bf16").to_vector()));
  REQUIRE(same_values(f16.cast<double>().to_vector(), expected("f16").to_vector()));
  // An F32 tensor loads into bfloat16 rounded to nearest even, as torch's .to(torch.bfloat16).
  const std::vector<float> weight = file.load<float>("linear.weight").to_vector();
  const std::vector<bfloat16> weight_bf16 = file.load<bfloat16>("linear.weight").to_vector();
  REQUIRE(weight.size() == weight_bf16.size());
  for (size_t i = 0; i < weight.size(); ++i) REQUIRE(weight_bf16[i].bits == bfloat16(weight[i]).bits);
  // Saved as BF16 / F16, reloaded bit for bit.
  const std::string path = scratch("sixteen.safetensors");
  io::save_safetensors(path, std::vector<std::pair<std::string, Tensor<bfloat16>>>{{"w", bf16}});
  REQUIRE(io::SafetensorsFile::open(path).info("w").dtype == io::DType::kBF16);
  const std::vector<bfloat16> back = io::SafetensorsFile::open(path).load<bfloat16>("w").to_vector();
  const std::vector<bfloat16> original = bf16.to_vector();
  for (size_t i = 0; i < back.size(); ++i) REQUIRE(back[i].bits == original[i].bits);
  io::save_safetensors(path, std::vector<std::pair<std::string, Tensor<float16>>>{{"h", f16}});
  REQUIRE(io::SafetensorsFile::open(path).info("h").dtype == io::DType::kF16);
  const std::vector<float16> back_f16 = io::SafetensorsFile::open(path).load<float16>("h").to_vector();
  const std::vector<float16> original_f16 = f16.to_vector();
  for (size_t i = 0; i < back_f16.size(); ++i) REQUIRE(back_f16[i].bits == original_f16[i].bits);
}

TEST_CASE("safetensors: a zero-size shape whose strides overflow is refused (issue 18, 2)",
          "[io][safetensors][hardening]") {
  const std::string path = scratch("zero_huge.safetensors");
  write_bytes(
      path, st_bytes(R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})", ""));
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::SafetensorsFile::open(path), FormatError, path.c_str(), "'a'",
                                  "overflows 64-bit sizes");
  // A representable zero-size tensor still loads.
  write_bytes(path, st_bytes(R"({"a":{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]}})", ""));
  const auto loaded = io::load_safetensors<float>(path);
  REQUIRE(loaded.size() == 1);
  REQUIRE(loaded.at(0).second.shape() == Shape{2, 0});
  REQUIRE(loaded.at(0).second.reshape({0, 2}).contiguous().numel() == 0);
}
