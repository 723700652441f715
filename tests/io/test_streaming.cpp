// Key filters, streaming readers (for_each_pth_tensor, for_each_safetensors_tensor,
// SafetensorsFile::read), the streaming SafetensorsWriter and pth_to_safetensors.
#include "test_util.hpp"

#include "io_test_util.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

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

std::string model_fixture(const std::string& name) {
  return std::string(BINDERY_TEST_DATA) + "/reference/model/" + name;
}

/// A copy of `source` in which one byte of tensor `name`'s storage is flipped: its CRC-32 no longer
/// matches, so reading it with verify_checksums fails — and not reading it does not.
std::string corrupt_storage_of(const std::string& source, const std::string& name, const std::string& copy) {
  std::string key;
  for (const auto& info : io::inspect_pth(source))
    if (info.name == name) key = info.storage_key;
  REQUIRE(!key.empty());
  const io::ZipReader zip(io::File::open(source));
  const std::string& first = zip.entries().at(0).name;
  const io::ZipEntry* member = zip.find(first.substr(0, first.find('/') + 1) + "data/" + key);
  REQUIRE(member != nullptr);
  std::string bytes = read_bytes(source);
  bytes[static_cast<size_t>(member->data_offset)] ^= 0x40;
  return write_bytes(scratch(copy), bytes);
}

bool in(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

TEST_CASE("pth: key_filter loads only the accepted tensors and never reads the others' storages",
          "[io][pth][stream]") {
  const std::string bad = corrupt_storage_of(fixture("state_dict.pth"), "f64", "corrupt_f64.pth");
  io::PthOptions options;
  options.verify_checksums = true;
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::load_pth<double>(bad, options), FormatError, bad.c_str(), "CRC-32");
  options.key_filter = [](const std::string& name) { return name != "f64"; };
  const auto named = io::load_pth<double>(bad, options);
  std::vector<std::string> names;
  for (const auto& [name, tensor] : named) {
    names.push_back(name);
    INFO(name);
    REQUIRE(tensor.to_vector() == expected(name).to_vector());
  }
  std::vector<std::string> want = kNames;
  want.erase(std::find(want.begin(), want.end(), "f64"));
  REQUIRE(names == want);  // the file's order, f64 left out
  // inspect_pth lists the same tensors; a filter that keeps nothing loads nothing.
  const auto infos = io::inspect_pth(bad, options);
  REQUIRE(infos.size() == want.size());
  options.key_filter = [](const std::string&) { return false; };
  REQUIRE(io::load_pth<float>(bad, options).empty());
  // One view of a shared storage alone: the storage is read, the view keeps its layout.
  options.key_filter = [](const std::string& name) { return name == "shared_col"; };
  const auto col = io::load_pth<double>(fixture("state_dict_zip64.pth"), options);
  REQUIRE(col.size() == 1);
  REQUIRE(col[0].second.offset() == 2);
  REQUIRE(col[0].second.to_vector() == expected("shared_col").to_vector());
}

TEST_CASE("pth: for_each_pth_tensor streams, releasing each storage after its last tensor",
          "[io][pth][stream]") {
  std::vector<std::string> names;
  std::map<std::string, long> owners;
  io::for_each_pth_tensor<double>(fixture("state_dict.pth"),
                                  [&](const std::string& name, const Tensor<double>& t) {
                                    names.push_back(name);
                                    INFO(name);
                                    REQUIRE(t.shape() == expected(name).shape());
                                    REQUIRE(t.to_vector() == expected(name).to_vector());
                                    if (t.numel() > 0) owners[name] = t.storage_use_count();
                                  });
  REQUIRE(names == kNames);
  // Nothing else holds a storage whose last tensor is being visited; a storage with views still to
  // come is also held by the reader.
  REQUIRE(owners.at("linear.weight") == 1);
  REQUIRE(owners.at("f64") == 1);
  REQUIRE(owners.at("shared_full") == 2);
  REQUIRE(owners.at("shared_row") == 2);
  REQUIRE(owners.at("shared_col") == 1);
  // With a filter, and an exception from the visitor propagates.
  io::PthOptions options;
  options.key_filter = [](const std::string& name) { return name.rfind("linear.", 0) == 0; };
  names.clear();
  io::for_each_pth_tensor<float>(
      fixture("state_dict_zip64.pth"),
      [&](const std::string& name, const Tensor<float>&) { names.push_back(name); }, options);
  REQUIRE(names == std::vector<std::string>{"linear.weight", "linear.bias"});
  REQUIRE_THROWS_AS(
      io::for_each_pth_tensor<float>(fixture("state_dict.pth"),
                                     [](const std::string&, const Tensor<float>&) { throw IndexError("x"); }),
      IndexError);
}

TEST_CASE("safetensors: key filters, pread reads and streaming give the mapped values",
          "[io][safetensors][stream]") {
  const std::string path = fixture("state_dict.safetensors");
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  for (const std::string& name : file.keys()) {
    INFO(name);
    const Tensor<double> read = file.read<double>(name);
    REQUIRE(read.shape() == file.info(name).shape);
    REQUIRE(read.to_vector() == file.load<double>(name).to_vector());
    REQUIRE(read.storage_use_count() == 1);  // its own memory, not the mapping
  }
  REQUIRE(file.data_offset() > 8);
  auto linear = [](const std::string& name) { return name.rfind("linear.", 0) == 0; };
  const auto some = io::load_safetensors<double>(path, linear);
  REQUIRE(some.size() == 2);
  std::vector<std::string> streamed;
  io::for_each_safetensors_tensor<double>(
      path,
      [&](const std::string& name, const Tensor<double>& t) {
        streamed.push_back(name);
        REQUIRE(t.to_vector() == file.load<double>(name).to_vector());
        REQUIRE(t.storage_use_count() == 1);
      },
      linear);
  REQUIRE(streamed.size() == 2);
  REQUIRE(in(streamed, "linear.weight"));
  REQUIRE(in(streamed, "linear.bias"));
  streamed.clear();
  io::for_each_safetensors_tensor<float>(
      path, [&](const std::string& name, const Tensor<float>&) { streamed.push_back(name); });
  REQUIRE(streamed == file.keys());
}

TEST_CASE("safetensors: SafetensorsWriter streams bytes and checks what it is given",
          "[io][safetensors][stream]") {
  Philox rng(3);
  const auto w = Tensor<float>::normal({3, 5}, rng);
  const auto b = Tensor<float>::normal({5}, rng);
  const std::string whole = scratch("whole.safetensors"), pieces = scratch("pieces.safetensors");
  io::save_safetensors(whole,
                       std::vector<std::pair<std::string, Tensor<float>>>{
                           {"w", w}, {"b", b}, {"e", Tensor<float>::zeros({0})}},
                       {{"format", "pt"}});
  {
    io::SafetensorsWriter out(pieces,
                              {{"w", io::DType::kF32, Shape{3, 5}},
                               {"e", io::DType::kF32, Shape{0}},
                               {"b", io::DType::kF32, Shape{5}}},
                              {{"format", "pt"}});
    REQUIRE(out.entries()[0].name == "b");  // name order
    REQUIRE(out.total() == 20 * 4);
    const std::vector<float> bv = b.to_vector(), wv = w.to_vector();
    std::string bytes(reinterpret_cast<const char*>(bv.data()), bv.size() * 4);
    bytes.append(reinterpret_cast<const char*>(wv.data()), wv.size() * 4);
    out.write(bytes.data(), 7);  // any split
    out.write(bytes.data() + 7, 50);
    BINDERY_REQUIRE_THROWS_WITH_ALL(out.write(bytes.data(), 100), ValueError, "past the last tensor");
    out.write(bytes.data() + 57, static_cast<int64_t>(bytes.size()) - 57);
    out.commit();
  }
  REQUIRE(read_bytes(pieces) == read_bytes(whole));
  // Whole tensors must come in order, with their declared shape and dtype; commit checks completeness.
  const std::string partial = scratch("partial.safetensors");
  {
    io::SafetensorsWriter out(partial, {{"a", io::DType::kF32, Shape{5}}, {"b", io::DType::kF64, Shape{2}}});
    BINDERY_REQUIRE_THROWS_WITH_ALL(out.write(w), ValueError, "'a'", "F32 (5,)", "(3, 5)");
    out.write(b);
    BINDERY_REQUIRE_THROWS_WITH_ALL(out.write(Tensor<float>::zeros({2})), ValueError, "'b'", "F64 (2,)",
                                    "F32 (2,)");
    BINDERY_REQUIRE_THROWS_WITH_ALL(out.commit(), ValueError, "only 20 of 36 bytes");
  }
  REQUIRE_FALSE(std::filesystem::exists(partial));  // nothing appears without a commit
}

TEST_CASE("convert: pth_to_safetensors keeps names, dtypes, shapes and values", "[io][convert]") {
  for (const char* source : {"state_dict.pth", "state_dict_zip64.pth"}) {
    INFO(source);
    const std::string out = scratch("converted.safetensors");
    io::pth_to_safetensors(fixture(source), out, {}, {{"format", "pt"}});
    const io::SafetensorsFile file = io::SafetensorsFile::open(out);
    REQUIRE(file.metadata().at("format") == "pt");
    std::vector<std::string> names = file.keys(), want = kNames;
    std::sort(names.begin(), names.end());
    std::sort(want.begin(), want.end());
    REQUIRE(names == want);
    for (const auto& info : io::inspect_pth(fixture(source))) {
      INFO(info.name);
      REQUIRE(file.info(info.name).dtype == info.dtype);  // F16 stays F16, BOOL stays BOOL, ...
      REQUIRE(file.info(info.name).shape == info.shape);
      REQUIRE(file.load<double>(info.name).to_vector() == expected(info.name).to_vector());
    }
  }
  // A key filter; the tiny model's checkpoint (one dtype) gives the reference writer's bytes exactly.
  io::PthOptions options;
  options.key_filter = [](const std::string& name) { return name == "transposed" || name == "shared_col"; };
  const std::string two = scratch("two.safetensors");
  io::pth_to_safetensors(fixture("state_dict.pth"), two, options);
  const io::SafetensorsFile file = io::SafetensorsFile::open(two);
  REQUIRE(file.keys() == std::vector<std::string>{"shared_col", "transposed"});
  REQUIRE(file.metadata().empty());
  REQUIRE(file.load<double>("transposed").to_vector() == expected("transposed").to_vector());
  const std::string tiny = scratch("tiny.safetensors");
  io::pth_to_safetensors(model_fixture("tiny.pth"), tiny);
  REQUIRE(read_bytes(tiny) == read_bytes(model_fixture("tiny.safetensors")));
}

TEST_CASE("convert: bad inputs are refused and leave no output", "[io][convert]") {
  const std::string out = scratch("refused.safetensors");
  const std::string ts = fixture("torchscript.pt");
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::pth_to_safetensors(ts, out), FormatError, ts.c_str(), "TorchScript");
  const std::string bad = corrupt_storage_of(fixture("state_dict.pth"), "bf16", "corrupt_bf16.pth");
  io::PthOptions options;
  options.verify_checksums = true;
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::pth_to_safetensors(bad, out, options), FormatError, "CRC-32");
  REQUIRE_FALSE(std::filesystem::exists(out));
  options.key_filter = [](const std::string& name) { return name != "bf16"; };
  io::pth_to_safetensors(bad, out, options);  // the corrupted storage is never read
  REQUIRE(io::SafetensorsFile::open(out).keys().size() == kNames.size() - 1);
}
