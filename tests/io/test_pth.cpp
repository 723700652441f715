#include "test_util.hpp"

#include "io_test_util.hpp"

using namespace bindery;
using namespace bindery::testing::io;

namespace {

const std::vector<std::string> kNames = {
    "linear.weight", "linear.bias", "f64",    "f16",        "bf16",        "i64",
    "i32",           "u8",          "flag",   "transposed", "view_offset", "shared_full",
    "shared_row",    "shared_col",  "scalar", "empty",      "param"};

Tensor<double> expected(const std::string& name) {
  return io::read_npy<double>(fixture("expected/" + name + ".npy"));
}

template <class T>
std::map<std::string, Tensor<T>> by_name(const std::vector<std::pair<std::string, Tensor<T>>>& named) {
  return {named.begin(), named.end()};
}

/// {'w': tensor(4 floats 0..3).view(2, 2)} as torch.save would pickle it.
std::string valid_pickle() {
  return Pickle()
      .op('}')
      .op('(')
      .str("w")
      .tensor("FloatStorage", "0", 4, 0, {2, 2}, {2, 1})
      .op('u')
      .op('.')
      .bytes;
}

}  // namespace

TEST_CASE("pth: the torch.save fixtures load with exact values, views and shared storages", "[io][pth]") {
  for (const char* file : {"state_dict.pth", "state_dict_zip64.pth"}) {
    INFO(file);
    const auto named = io::load_pth<double>(fixture(file));
    std::vector<std::string> names;
    for (const auto& [name, tensor] : named) names.push_back(name);
    REQUIRE(names == kNames);  // the state_dict's order
    const auto t = by_name(named);
    for (const std::string& name : kNames) {
      INFO(name);
      const Tensor<double> want = expected(name);
      REQUIRE(t.at(name).shape() == want.shape());
      REQUIRE(t.at(name).to_vector() == want.to_vector());  // bit-exact
    }
    // Layouts as PyTorch has them: a transposed view, an offset view, three views of one storage.
    REQUIRE(t.at("transposed").strides() == Strides{1, 4});
    REQUIRE_FALSE(t.at("transposed").is_contiguous());
    REQUIRE(t.at("view_offset").offset() == 3);
    REQUIRE(t.at("view_offset").storage_capacity() == 10);
    REQUIRE(t.at("shared_row").shares_storage_with(t.at("shared_full")));
    REQUIRE(t.at("shared_col").shares_storage_with(t.at("shared_full")));
    REQUIRE(t.at("shared_col").strides() == Strides{4});
    REQUIRE(t.at("shared_col").offset() == 2);
    REQUIRE(t.at("shared_full").storage_capacity() == 12);  // one storage, read once
    REQUIRE_FALSE(t.at("linear.weight").shares_storage_with(t.at("linear.bias")));
    REQUIRE(t.at("scalar").rank() == 0);
  }
}

TEST_CASE("pth: dtype conversion to float and to integers", "[io][pth]") {
  const auto t = by_name(io::load_pth<float>(fixture("state_dict.pth")));
  REQUIRE(t.at("f16").to_vector() == expected("f16").cast<float>().to_vector());  // half -> float: exact
  REQUIRE(t.at("bf16").to_vector() == expected("bf16").cast<float>().to_vector());
  REQUIRE(t.at("f64").to_vector()[0] == static_cast<float>(1.0 / 3.0));  // double -> float: nearest
  REQUIRE(std::isinf(t.at("f64").to_vector()[2]));
  REQUIRE(t.at("i64").to_vector() == std::vector<float>{-7.f, 1099511627776.f, 0.f});
  REQUIRE(t.at("flag").to_vector() == std::vector<float>{1, 0, 0, 1});
  // Integer T: floating tensors are refused rather than truncated.
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<int64_t>(fixture("state_dict.pth")), ValueError,
                                  "state_dict.pth", "'linear.weight'", "F32");
}

TEST_CASE("pth: inspect_pth lists names, dtypes, shapes and storages without loading", "[io][pth]") {
  const auto infos = io::inspect_pth(fixture("state_dict_zip64.pth"));
  REQUIRE(infos.size() == kNames.size());
  std::map<std::string, io::PthTensorInfo> info;
  for (const auto& i : infos) info[i.name] = i;
  REQUIRE(info.at("bf16").dtype == io::DType::kBF16);
  REQUIRE(info.at("flag").dtype == io::DType::kBool);
  REQUIRE(info.at("i32").dtype == io::DType::kI32);
  REQUIRE(info.at("transposed").shape == Shape{4, 3});
  REQUIRE(info.at("transposed").strides == Strides{1, 4});
  REQUIRE(info.at("view_offset").storage_offset == 3);
  REQUIRE(info.at("view_offset").storage_numel == 10);
  REQUIRE(info.at("shared_row").storage_key == info.at("shared_full").storage_key);
}

TEST_CASE("pth: checksums can be verified; a crafted archive round-trips", "[io][pth]") {
  io::PthOptions options;
  options.verify_checksums = true;
  REQUIRE(io::load_pth<float>(fixture("state_dict.pth"), options).size() == kNames.size());
  const std::string path =
      write_bytes(scratch("crafted.pth"), make_pth(valid_pickle(), {{"0", float_bytes(4)}}));
  const auto named = io::load_pth<float>(path, options);
  REQUIRE(named.size() == 1);
  bindery::testing::require_values(named[0].second, Shape{2, 2}, {0, 1, 2, 3}, 0.0);
}

TEST_CASE("pth: files that are not torch.save state_dict archives are refused clearly", "[io][pth]") {
  const std::string ts = fixture("torchscript.pt");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<float>(ts), FormatError, ts.c_str(), "at byte ",
                                  "TorchScript");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::inspect_pth(ts), FormatError, "TorchScript");
  const std::string legacy = fixture("legacy.pth");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<float>(legacy), FormatError, legacy.c_str(), "at byte 0",
                                  "legacy");
  const std::string npy = fixture("f4.npy");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<float>(npy), FormatError, npy.c_str(), "at byte 0",
                                  "not a PyTorch checkpoint");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<float>(scratch("missing.pth")), IoError, "missing.pth");
  const std::string path = scratch("list.pth");
  write_bytes(path, make_pth(Pickle().op(']').op('.').bytes, {}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<float>(path), FormatError, path.c_str(), "at byte ",
                                  "not a dict");
}

TEST_CASE("pth: malformed pickles give FormatError with file, member and byte offset", "[io][pth]") {
  const std::string path = scratch("bad_pickle.pth");
  const auto load = [&](const std::string& pickle,
                        const std::vector<std::pair<std::string, std::string>>& storages = {}) {
    write_bytes(path, make_pth(pickle, storages));
    return io::load_pth<float>(path);
  };
  SECTION("unknown global: nothing is executed") {
    // GLOBAL 'os system' at pickle byte 2; data.pkl's data starts at byte 30 + 16 = 46.
    const std::string pickle =
        Pickle().global("os", "system").str("echo pwned").op('\x85').op('R').op('.').bytes;
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(pickle), FormatError, path.c_str(), "archive/data.pkl",
                                    "pickle byte 2", "at byte 48", "global 'os.system' is not allowed");
    const std::string builtins = Pickle().global("builtins", "eval").op('.').bytes;
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(builtins), FormatError, path.c_str(), "at byte 48",
                                    "'builtins.eval'");
  }
  SECTION("tensor larger than its storage") {
    const std::string pickle = Pickle()
                                   .op('}')
                                   .op('(')
                                   .str("w")
                                   .tensor("FloatStorage", "0", 4, 0, {3, 2}, {2, 1})
                                   .op('u')
                                   .op('.')
                                   .bytes;
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(pickle, {{"0", float_bytes(4)}}), FormatError, path.c_str(),
                                    "at byte ", "size (3, 2)", "storage '0' of 4 elements");
    const std::string offset =
        Pickle().op('}').op('(').str("w").tensor("FloatStorage", "0", 4, 3, {2}, {1}).op('u').op('.').bytes;
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(offset, {{"0", float_bytes(4)}}), FormatError, path.c_str(),
                                    "storage offset 3");
    const std::string overflow = Pickle()
                                     .op('}')
                                     .op('(')
                                     .str("w")
                                     .tensor("FloatStorage", "0", 4, 0, {int64_t{1} << 62, 8}, {8, 1})
                                     .op('u')
                                     .op('.')
                                     .bytes;
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(overflow, {{"0", float_bytes(4)}}), FormatError, path.c_str(),
                                    "does not fit");
  }
  SECTION("storage element count differs from its member's size (huge counts allocate nothing)") {
    const std::string pickle = Pickle()
                                   .op('}')
                                   .op('(')
                                   .str("w")
                                   .tensor("FloatStorage", "0", int64_t{1} << 40, 0, {int64_t{1} << 40}, {1})
                                   .op('u')
                                   .op('.')
                                   .bytes;
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(pickle, {{"0", float_bytes(4)}}), FormatError, path.c_str(),
                                    "at byte ", "archive/data/0", "declares 1099511627776 elements",
                                    "holds 16 bytes");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(valid_pickle(), {}), FormatError, path.c_str(),
                                    "no archive member 'archive/data/0'");
  }
  SECTION("SETITEM on a list, APPEND on a dict, BUILD on a tensor") {
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().op(']').str("k").int1(1).op('s').op('.').bytes),
                                    FormatError, path.c_str(), "pickle byte 11", "at byte 57",
                                    "SETITEM on a list");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().op('}').int1(1).op('a').op('.').bytes), FormatError,
                                    path.c_str(), "APPEND on a dict");
    const std::string build = Pickle()
                                  .op('}')
                                  .op('(')
                                  .str("w")
                                  .tensor("FloatStorage", "0", 4, 0, {4}, {1})
                                  .op('}')
                                  .op('b')
                                  .op('u')
                                  .op('.')
                                  .bytes;
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(build, {{"0", float_bytes(4)}}), FormatError, path.c_str(),
                                    "BUILD on a tensor");
  }
  SECTION("strings and memo indices past the end") {
    std::string huge = Pickle().bytes + "X";
    put_le<uint32_t>(huge, 0xFFFFFFF0u);  // a 4 GB string in a 7-byte pickle
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(huge + "abc."), FormatError, path.c_str(), "pickle byte 2",
                                    "runs past the end");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().raw("j\xff\xff\xff\xff").op('.').bytes), FormatError,
                                    path.c_str(), "memo index 4294967295 was never stored");
    BINDERY_REQUIRE_THROWS_WITH_ALL(
        load(Pickle().raw(std::string("X\x02\x00\x00\x00\xc3\x28", 7)).op('.').bytes), FormatError,
        path.c_str(), "not valid UTF-8");
  }
  SECTION("stack and mark misuse, caps, unknown opcodes, missing STOP") {
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().op('s').bytes), FormatError, path.c_str(),
                                    "stack underflow");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().op('u').bytes), FormatError, path.c_str(), "no MARK");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().raw(std::string(300, '(')).bytes), FormatError,
                                    path.c_str(), "pickle byte 258", "MARK nesting exceeds 256");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().op('}').raw("\x81").bytes), FormatError, path.c_str(),
                                    "pickle byte 3", "opcode 0x81", "unsupported");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().op('}').bytes), FormatError, path.c_str(), "without STOP");
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(Pickle().op('}').op('}').op('.').bytes), FormatError, path.c_str(),
                                    "STOP with 2");
  }
  SECTION("a self-referencing list neither leaks nor loops") {
    // l = []; l.append(l); {'x': l}
    const std::string pickle =
        Pickle().op('}').str("x").op(']').raw("q\x00h\x00").op('a').op('s').op('.').bytes;
    REQUIRE(load(pickle).empty());
  }
}

TEST_CASE("pth: malformed zip structures give FormatError with file and byte offset", "[io][pth]") {
  const std::string path = scratch("bad_zip.pth");
  const std::string pickle = valid_pickle();
  const auto load = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    return io::load_pth<float>(path);
  };
  SECTION("compressed member") {
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(make_zip({{"archive/data.pkl", pickle, 8}})), FormatError,
                                    path.c_str(), "at byte 0", "'archive/data.pkl'",
                                    "compressed (method 8, deflate)");
  }
  SECTION("huge declared entry count") {
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(make_zip({{"archive/data.pkl", pickle}}, 0xFFFE)), FormatError,
                                    path.c_str(), "zip central directory at byte", "declares 65534 entries");
  }
  SECTION("local header name differs from the central directory") {
    ZipMember member{"archive/data.pkl", pickle};
    member.local_name = "archive/data.pkX";
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(make_zip({member})), FormatError, path.c_str(), "at byte 30",
                                    "differs from the central directory");
  }
  SECTION("two members aliasing the same bytes") {
    // Member 'archive/data/0' (at byte 0, data from byte 44) carries a complete local header for
    // 'archive/data/1' inside its data; the central directory points 'archive/data/1' there.
    const std::string payload = float_bytes(2);
    ZipMember alias{"archive/data/1", payload};
    alias.local_offset = 30 + 14;
    const std::vector<ZipMember> members = {
        {"archive/data/0", make_zip({{"archive/data/1", payload}})}, {"archive/data.pkl", pickle}, alias};
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(make_zip(members)), FormatError, path.c_str(), "at byte 44",
                                    "overlaps the data of 'archive/data/0'");
  }
  SECTION("member data running into the central directory") {
    std::string bytes = make_zip({{"archive/data.pkl", pickle}});
    bytes[18] = '\x00';  // local compressed size stays; bump the central directory's size fields instead
    const size_t cd = bytes.find("PK\x01\x02");
    bytes[cd + 20] = bytes[cd + 24] = '\x7f';
    bytes[cd + 21] = bytes[cd + 25] = '\x7f';
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(bytes), FormatError, path.c_str(), "at byte 0", "differ");
  }
  SECTION("duplicate member names") {
    BINDERY_REQUIRE_THROWS_WITH_ALL(
        load(make_zip({{"archive/data.pkl", pickle}, {"archive/data.pkl", pickle}})), FormatError,
        path.c_str(), "duplicate entry name");
  }
  SECTION("CRC mismatch in data.pkl") {
    std::string bytes = make_zip({{"archive/data.pkl", pickle}});
    bytes[30 + 16 + 3] ^= 0x01;  // flip a bit inside the pickle
    BINDERY_REQUIRE_THROWS_WITH_ALL(load(bytes), FormatError, path.c_str(), "at byte 46", "CRC-32 mismatch");
  }
}

TEST_CASE("pth: a checkpoint truncated at every byte gives a bindery::Error, never a crash", "[io][pth]") {
  const std::string bytes = read_bytes(fixture("state_dict.pth"));
  const ScratchFile file(scratch("truncated.pth"), bytes);
  for (size_t n = bytes.size(); n-- > 0;) {
    file.shrink(n);
    INFO("truncated to " << n << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(io::load_pth<float>(file.path()), FormatError);
  }
}

TEST_CASE("pth: every single-byte corruption gives a result or a bindery::Error", "[io][pth]") {
  // Not a fuzzer, but it walks every field of a real torch.save file: each byte replaced by 0xff.
  const std::string bytes = read_bytes(fixture("state_dict.pth"));
  const ScratchFile file(scratch("corrupted.pth"), bytes);
  int refused = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    file.poke(i, static_cast<char>(bytes[i] == '\xff' ? 0 : 0xff));
    INFO("byte " << i);
    try {
      (void)io::load_pth<double>(file.path());
    } catch (const Error&) {
      ++refused;
    }
    file.poke(i, bytes[i]);
  }
  CHECK(refused > 0);
}

TEST_CASE("pth: the unpickler survives every truncation and byte change of a real data.pkl", "[io][pth]") {
  // The archive's CRC check would catch most of these before the pickle VM runs: drive it directly.
  const io::ZipReader zip(io::File::open(fixture("state_dict.pth")));
  const io::ZipEntry* entry = zip.find("state_dict/data.pkl");
  REQUIRE(entry != nullptr);
  const std::string pickle = zip.read_small(*entry, 1 << 20);
  REQUIRE(io::read_pickle(pickle, "state_dict.pth", entry->name, entry->data_offset).tensors.size() ==
          kNames.size());
  for (size_t n = 0; n < pickle.size(); ++n) {
    INFO("truncated to " << n);
    CHECK_THROWS_AS(io::read_pickle(pickle.substr(0, n), "state_dict.pth", entry->name, entry->data_offset),
                    FormatError);
  }
  int refused = 0, runs = 0;
  for (size_t i = 0; i < pickle.size(); ++i) {
    for (const char value :
         {'\x00', '\xff', '\x7f', 'q', 'h', 'X', '(', 't', 'R', 'Q', 's', 'u', 'a', 'b', '.'}) {
      std::string mutated = pickle;
      if (mutated[i] == value) continue;
      mutated[i] = value;
      INFO("byte " << i << " set to " << int(value));
      ++runs;
      try {
        (void)io::read_pickle(mutated, "state_dict.pth", entry->name, entry->data_offset);
      } catch (const FormatError&) {
        ++refused;
      }
    }
  }
  CHECK(refused > runs / 2);
}

TEST_CASE("pth: a zero-size tensor whose strides overflow is refused (issue 18, 2)", "[io][pth][hardening]") {
  const std::string path = scratch("zero_huge.pth");
  const auto pickle = [](const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    return Pickle()
        .op('}')
        .op('(')
        .str("w")
        .tensor("FloatStorage", "0", 4, 0, size, stride)
        .op('u')
        .op('.')
        .bytes;
  };
  constexpr int64_t k62 = int64_t{1} << 62;
  write_bytes(path, make_pth(pickle({0, k62, 4}, {4, 4, 1}), {{"0", float_bytes(4)}}));
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<float>(path), FormatError, path.c_str(), "archive/data.pkl",
                                  "size (0, 4611686018427387904, 4)", "overflowing");
  REQUIRE_THROWS_AS(io::inspect_pth(path), FormatError);
  // Zero-size tensors with ordinary shapes load, and reshape without recursing.
  write_bytes(path, make_pth(pickle({2, 0}, {1, 1}), {{"0", float_bytes(4)}}));
  const auto loaded = io::load_pth<float>(path);
  REQUIRE(loaded.size() == 1);
  REQUIRE(loaded.at(0).second.shape() == Shape{2, 0});
  REQUIRE(loaded.at(0).second.reshape({0, 2}).contiguous().numel() == 0);
}
