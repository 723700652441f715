// JSON read from files (io/json.hpp): a depth limit checked before parsing, short error excerpts,
// and every reader that parses JSON from a file routed through it (issue 18, class 8).
#include "test_util.hpp"

#include "io_test_util.hpp"

#include <bindery/io/json.hpp>
#include <bindery/models/imagebind/config.hpp>
#include <bindery/train/checkpoint_format.hpp>
#include <bindery/train/progress.hpp>

using namespace bindery;
using namespace bindery::testing::io;

namespace {

/// `levels` nested arrays: [[[...]]] (about 2 bytes a level).
std::string nested(int levels) {
  return std::string(static_cast<size_t>(levels), '[') + std::string(static_cast<size_t>(levels), ']');
}

}  // namespace

TEST_CASE("json: nesting past the limit is refused before parsing, with the byte offset",
          "[io][json][hardening]") {
  REQUIRE(io::parse_json(nested(io::kJsonMaxDepth), "x").is_array());
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::parse_json(nested(io::kJsonMaxDepth + 1), "cfg.json"), FormatError,
                                  "cfg.json", "at byte 64", "nested deeper than 64 levels",
                                  "io::kJsonMaxDepth");
  // 10,000 levels (20 KB) overflowed the stack when copied or dumped; now refused at byte 64.
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::parse_json(nested(10000), "m"), FormatError, "at byte 64");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      io::parse_json<nlohmann::ordered_json>("{\"a\":" + nested(100000) + "}", "m"), FormatError,
      "at byte 68");
  // Brackets inside strings (escaped quotes included) do not count; the limit is configurable.
  REQUIRE(io::parse_json("[\"" + std::string(1000, '[') + "\\\"[[[\"]", "s").size() == 1);
  REQUIRE(io::parse_json(nested(100), "deep", 100).is_array());
  BINDERY_REQUIRE_THROWS_WITH_ALL(io::parse_json("{\"a\": }", "bad.json"), FormatError, "bad.json",
                                  "at byte 6", "invalid JSON");
}

TEST_CASE("json: error excerpts stay short and never dump nested values", "[io][json][hardening]") {
  REQUIRE(io::json_excerpt(nlohmann::json(3)) == "3");
  REQUIRE(io::json_excerpt(nlohmann::json::parse("[1, 2]")) == "[1,2]");
  REQUIRE(io::json_excerpt(nlohmann::json::parse("[[1], 2]")) == "an array of 2 elements");
  REQUIRE(io::json_excerpt(nlohmann::json::parse("{\"a\": {}}")) == "an object of 1 members");
  const std::string excerpt = io::json_excerpt(nlohmann::json(std::string(100000, 'x')));
  REQUIRE(excerpt.size() < 130);
  REQUIRE(excerpt.ends_with("..."));
  // A cut inside a UTF-8 sequence (a 2-byte character at bytes 119-120) does not throw.
  REQUIRE_NOTHROW(io::json_excerpt(nlohmann::json(std::string(119, 'x') + "\u00e9" + std::string(10, 'y'))));
  nlohmann::json many = nlohmann::json::array();
  for (int i = 0; i < 1000; ++i) many.push_back(i);
  REQUIRE(io::json_excerpt(many) == "an array of 1000 elements");
}

TEST_CASE("json: a deeply nested checkpoint manifest is a FormatError, not a stack overflow",
          "[io][json][hardening]") {
  const std::string path = scratch("deep_manifest.safetensors");
  const std::string manifest = "{\"format\": " + nested(10000) + "}";
  const std::string crc =
      train::detail::hex32(train::detail::crc32_bytes(0, manifest.data(), manifest.size()));
  io::save_safetensors<float, Cpu>(
      path, {{"w", Tensor<float>::zeros({1})}},
      {{train::kCheckpointManifestKey, manifest}, {train::kCheckpointManifestCrcKey, crc}});
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::detail::open_checkpoint(path), FormatError, path.c_str(),
                                  "checkpoint manifest", "nested deeper than 64 levels");
  // A wrong-typed member is quoted as a short excerpt.
  const std::string shallow = "{\"format\": [[1]]}";
  const std::string crc2 =
      train::detail::hex32(train::detail::crc32_bytes(0, shallow.data(), shallow.size()));
  io::save_safetensors<float, Cpu>(
      path, {{"w", Tensor<float>::zeros({1})}},
      {{train::kCheckpointManifestKey, shallow}, {train::kCheckpointManifestCrcKey, crc2}});
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::detail::open_checkpoint(path), FormatError, path.c_str(),
                                  "\"format\" must be a string, got an array of 1 elements");
}

TEST_CASE("json: a deeply nested model config is a FormatError naming the file", "[io][json][hardening]") {
  const std::string path = scratch("deep_config.json");
  write_bytes(path, "{\"model\": \"imagebind\", \"encoders\": " + nested(10000) + "}");
  BINDERY_REQUIRE_THROWS_WITH_ALL(models::imagebind::load_config(path), FormatError, path.c_str(),
                                  "nested deeper than 64 levels");
  write_bytes(path, "{\"model\": \"imagebind\", \"encoders\": {\"vision\": [[1], [2]]}}");
  BINDERY_REQUIRE_THROWS_WITH_ALL(models::imagebind::load_config(path), ValueError, "an array of 2 elements");
}

TEST_CASE("json: a metrics log line nested too deep is a FormatError", "[io][json][hardening]") {
  const std::string path = scratch("metrics.jsonl");
  write_bytes(path, "{\"step\": 1}\n" + nested(10000) + "\n");
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::read_metrics(path), FormatError, path.c_str(),
                                  "nested deeper than 64");
  write_bytes(path, "{\"step\": 1}\n{\"step\": 2, \"loss\": [[0.5]]}\n{\"torn");
  REQUIRE(train::read_metrics(path).size() == 2);
}

TEST_CASE("json: integers read from a file are range-checked, never cast from any number",
          "[io][json][hardening]") {
  using nlohmann::json;
  CHECK(io::json_int64(json(42)) == 42);
  CHECK(io::json_int64(json(-7)) == -7);
  CHECK(io::json_int64(json::parse("2.0")) == 2);  // a whole float, as some writers print it
  CHECK(io::json_int64(json::parse("9223372036854775807")) == INT64_MAX);
  CHECK(io::json_int64(json::parse("-9223372036854775808")) == INT64_MIN);
  CHECK_FALSE(io::json_int64(json::parse("9223372036854775808")).has_value());  // unsigned past INT64_MAX
  CHECK_FALSE(io::json_int64(json::parse("9.3e18")).has_value());
  CHECK_FALSE(io::json_int64(json::parse("2.2e79")).has_value());
  CHECK_FALSE(io::json_int64(json::parse("2.5")).has_value());
  CHECK_FALSE(io::json_int64(json("7")).has_value());
  CHECK_FALSE(io::json_int64(json(true)).has_value());
}

TEST_CASE("json: a model config with an integer field out of range is a ValueError (fuzz_config finding)",
          "[io][json][hardening]") {
  // fuzz/regressions/config/: "input_shape": [3, 2, 224, 2.2e79] reached nlohmann's float -> int64
  // cast, undefined behaviour (UBSan: "outside the range of representable values").
  const auto spec = [](const std::string& field) {
    return nlohmann::ordered_json::parse("{\"model\": \"imagebind\", \"encoders\": {\"vision\": {" + field +
                                         "}}}");
  };
  using models::imagebind::imagebind_config_from_json;
  BINDERY_REQUIRE_THROWS_WITH_ALL(imagebind_config_from_json(spec("\"input_shape\": [3, 2, 224, 2.2e79]")),
                                  ValueError, "encoders.vision.input_shape", "in int64 range", "2.2e+79");
  BINDERY_REQUIRE_THROWS_WITH_ALL(imagebind_config_from_json(spec("\"embed_dim\": 1e300")), ValueError,
                                  "encoders.vision.embed_dim");
  BINDERY_REQUIRE_THROWS_WITH_ALL(imagebind_config_from_json(spec("\"num_heads\": 18446744073709551615")),
                                  ValueError, "encoders.vision.num_heads");
  BINDERY_REQUIRE_THROWS_WITH_ALL(imagebind_config_from_json(spec("\"kernel\": 3")), ValueError,
                                  "expected an array of integers");
  // Whole floats are still read as before.
  const auto tiny = models::imagebind::to_json(models::imagebind::ImageBindConfig::tiny());
  auto floats = tiny;
  floats["encoders"]["vision"]["embed_dim"] =
      static_cast<double>(tiny["encoders"]["vision"]["embed_dim"].get<int64_t>());
  REQUIRE(models::imagebind::to_json(imagebind_config_from_json(floats)) == tiny);
}
