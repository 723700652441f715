// ImageBind model structure: the huge key set and parameter counts, configs and JSON, loading one
// modality, strict-load errors, bad inputs, gradients.
#include "test_util.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "imagebind_fixtures.hpp"
#include "meta_backend.hpp"

using namespace bindery;
using namespace bindery::testing;
namespace ib = bindery::models::imagebind;
using ib::Modality;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("bindery_test_imagebind_" + name)).string();
}

/// The reference key list of the tiny fixture model, in order, with shapes.
std::vector<std::pair<std::string, Shape>> tiny_reference_keys() {
  std::vector<std::pair<std::string, Shape>> keys;
  for (const auto& [key, tensor] : io::load_pth<float>(model_fixture("tiny.pth")))
    keys.emplace_back(key, tensor.shape());
  return keys;
}

template <class T, class B>
std::vector<std::pair<std::string, Shape>> model_keys(const nn::Module<T, B>& model) {
  std::vector<std::pair<std::string, Shape>> keys;
  for (const auto& [key, tensor] : model.state_dict()) keys.emplace_back(key, tensor.shape());
  return keys;
}

}  // namespace

TEST_CASE("imagebind huge: the module tree has exactly the reference's keys and shapes",
          "[models][imagebind]") {
  // Built on the shape-only Meta backend: the real tree, no 4.8 GB allocation, in milliseconds.
  ib::ImageBindModel<float, Meta> model(ib::ImageBindConfig::huge());
  const HugeKeys reference = read_huge_keys();
  const auto ours = model_keys(model);
  REQUIRE(reference.keys.size() == 1311);
  REQUIRE(ours.size() == reference.keys.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    INFO("entry " << i);
    REQUIRE(ours[i].first == reference.keys[i].first);  // same names, same order
    REQUIRE(ours[i].second == reference.keys[i].second);
  }
  // Parameter counts per modality: the reference's, and imagebind.md's rounded millions.
  const std::map<std::string, double> millions = {{"vision", 632.8}, {"text", 354.0},   {"audio", 86.2},
                                                  {"depth", 21.9},   {"thermal", 86.2}, {"imu", 19.6}};
  REQUIRE(reference.counts.size() == 6);
  int64_t total = 0;
  for (const auto& [name, count] : reference.counts) {
    const Modality m = ib::modality_from_name(name);
    INFO(name);
    CHECK(model.num_parameters(m) == count);
    CHECK(std::round(static_cast<double>(model.num_parameters(m)) / 1e5) / 10.0 == millions.at(name));
    total += model.num_parameters(m);
  }
  CHECK(model.num_parameters() == total);
  CHECK(total == 1200781057);
  CHECK_THROWS_AS(model.encode(Modality::kVision, Var<float, Meta>()), ValueError);
}

TEST_CASE("imagebind tiny: keys, shapes and order equal the reference state_dict", "[models][imagebind]") {
  ib::ImageBindModel<float> model(ib::ImageBindConfig::tiny());
  CHECK(model_keys(model) == tiny_reference_keys());
  // Stage names of a standalone encoder, and the text mask is a (saved) buffer, not a parameter.
  auto text = ib::make_encoder<float>(ib::ImageBindConfig::tiny().at(Modality::kText));
  std::set<std::string> names;
  for (const auto& [key, var] : text->named_parameters()) names.insert(key);
  CHECK(names.count("postprocessor.1.log_logit_scale") == 1);
  CHECK(names.count("preprocessor.mask") == 0);
  CHECK(text->state_dict().contains("preprocessor.mask"));
  auto audio = ib::make_encoder<float>(ib::ImageBindConfig::tiny().at(Modality::kAudio));
  CHECK(audio->state_dict().contains("postprocessor.1.log_logit_scale"));  // a buffer: saved, not trained
  for (const auto& [key, var] : audio->named_parameters()) CHECK(key != "postprocessor.1.log_logit_scale");
}

TEST_CASE("imagebind config: presets, geometry and validation", "[models][imagebind][config]") {
  const ib::ImageBindConfig huge = ib::ImageBindConfig::huge();
  CHECK(huge.at(Modality::kVision).num_tokens() == 257);
  CHECK(huge.at(Modality::kVision).patch_grid() == std::vector<int64_t>{1, 16, 16});
  CHECK(huge.at(Modality::kAudio).patch_grid() == std::vector<int64_t>{12, 19});
  CHECK(huge.at(Modality::kAudio).num_tokens() == 229);
  CHECK(huge.at(Modality::kDepth).num_tokens() == 197);
  CHECK(huge.at(Modality::kThermal).num_tokens() == 197);
  CHECK(huge.at(Modality::kImu).num_tokens() == 251);
  CHECK(huge.at(Modality::kImu).imu_patch_values() == 48);
  CHECK(huge.at(Modality::kText).num_tokens() == 77);
  CHECK(huge.at(Modality::kText).logit_scale == Approx(1 / 0.07));
  CHECK(huge.at(Modality::kImu).head_dropout == 0.5);
  for (Modality m : ib::kModalities) CHECK(huge.at(m).out_dim == 1024);

  // tiny() equals the reference constructor arguments the fixtures were made with.
  std::ifstream in(model_fixture("tiny_config.json"));
  const auto args = nlohmann::json::parse(in);
  const ib::ImageBindConfig tiny = ib::ImageBindConfig::tiny();
  CHECK(args["vision_embed_dim"] == tiny.at(Modality::kVision).embed_dim);
  CHECK(args["kernel_size"] == tiny.at(Modality::kVision).kernel);
  CHECK(args["text_embed_dim"] == tiny.at(Modality::kText).embed_dim);
  CHECK(args["audio_num_mel_bins"] == tiny.at(Modality::kAudio).input_shape[1]);
  CHECK(args["audio_target_len"] == tiny.at(Modality::kAudio).input_shape[2]);
  CHECK(args["audio_stride"] == tiny.at(Modality::kAudio).stride[0]);
  CHECK(args["audio_num_heads"] == tiny.at(Modality::kAudio).num_heads);
  CHECK(args["depth_kernel_size"] == tiny.at(Modality::kDepth).kernel[0]);
  CHECK(args["thermal_kernel_size"] == tiny.at(Modality::kThermal).kernel[0]);
  CHECK(args["imu_embed_dim"] == tiny.at(Modality::kImu).embed_dim);
  CHECK(args["imu_drop_path"] == tiny.at(Modality::kImu).drop_path);
  CHECK(args["out_embed_dim"] == tiny.at(Modality::kImu).out_dim);

  ib::EncoderConfig bad = tiny.at(Modality::kAudio);
  bad.num_heads = 3;  // 16 is not divisible by 3
  BINDERY_REQUIRE_THROWS_WITH_ALL(bad.validate("audio"), ValueError, "audio", "divisible", "3");
  bad = tiny.at(Modality::kAudio);
  bad.kernel = {16, 16, 16};
  BINDERY_REQUIRE_THROWS_WITH_ALL(bad.validate("audio"), ValueError, "audio", "kernel of 3");
  bad = tiny.at(Modality::kText);
  bad.head = ib::HeadKind::kClsToken;
  CHECK_THROWS_AS(bad.validate(), ValueError);
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::modality_from_name("smell"), ValueError, "smell", "vision");
  ib::ImageBindConfig partial;
  partial.encoders[Modality::kDepth] = tiny.at(Modality::kDepth);
  BINDERY_REQUIRE_THROWS_WITH_ALL(partial.at(Modality::kVision), ValueError, "vision");
}

TEST_CASE("imagebind config: JSON round trip and errors", "[models][imagebind][config]") {
  for (const auto& config : {ib::ImageBindConfig::huge(), ib::ImageBindConfig::tiny()}) {
    const std::string path = temp_path("config.json");
    ib::save_config(config, path);
    const ib::ImageBindConfig loaded = ib::load_config(path);
    CHECK(ib::to_json(loaded) == ib::to_json(config));
    // The loaded config builds the same tree.
    ib::ImageBindModel<float, Meta> a(config), b(loaded);
    CHECK(model_keys(a) == model_keys(b));
    std::filesystem::remove(path);
  }
  auto j = ib::to_json(ib::ImageBindConfig::tiny());
  j["encoders"]["audio"]["num_heds"] = 4;
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::imagebind_config_from_json(j), ValueError, "encoders.audio.num_heds",
                                  "unknown field");
  j = ib::to_json(ib::ImageBindConfig::tiny());
  j["encoders"]["audio"]["embed_dim"] = "wide";
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::imagebind_config_from_json(j), ValueError, "encoders.audio.embed_dim");
  j = ib::to_json(ib::ImageBindConfig::tiny());
  j["encoders"]["audio"]["stem"] = "wavelet";
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::imagebind_config_from_json(j), ValueError, "wavelet");
  j = ib::to_json(ib::ImageBindConfig::tiny());
  j["encoders"]["smell"] = j["encoders"]["audio"];
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::imagebind_config_from_json(j), ValueError, "smell");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::load_config(temp_path("missing.json")), IoError, "missing.json");
}

TEST_CASE("imagebind: one modality alone is built and loaded", "[models][imagebind]") {
  for (const std::string file : {"tiny.pth", "tiny.safetensors"}) {
    INFO(file);
    auto model = ib::ImageBindModel<float>::from_checkpoint(model_fixture(file), ib::ImageBindConfig::tiny(),
                                                            {Modality::kAudio});
    CHECK(model->modalities() == std::vector<Modality>{Modality::kAudio});
    CHECK(model->has(Modality::kAudio));
    CHECK_FALSE(model->has(Modality::kText));
    for (const auto& [key, tensor] : model->state_dict()) CHECK(ib::key_modality(key) == Modality::kAudio);
    CHECK(model->num_parameters() == model->num_parameters(Modality::kAudio));
    BINDERY_REQUIRE_THROWS_WITH_ALL(
        model->encode(Modality::kText, io::read_npy<int64_t>(model_fixture("text_input.npy"))), ValueError,
        "text", "not loaded", "audio");
    NoGrad no_grad;
    const Var<float> embedding =
        model->encode(Modality::kAudio, io::read_npy<float>(model_fixture("audio_input.npy")));
    CHECK(relative_error(embedding.value(), io::read_npy<float>(model_fixture("audio_final.npy"))) <= 1e-5);
  }
  // The forward over a map, as the reference's.
  auto model = ib::ImageBindModel<float>::from_checkpoint(
      model_fixture("tiny.pth"), ib::ImageBindConfig::tiny(), {Modality::kImu, Modality::kDepth});
  NoGrad no_grad;
  const auto out =
      model->forward({{Modality::kImu, io::read_npy<float>(model_fixture("imu_input.npy"))},
                      {Modality::kDepth, io::read_npy<float>(model_fixture("depth_input.npy"))}});
  REQUIRE(out.size() == 2);
  CHECK(relative_error(out.at(Modality::kImu).value(), io::read_npy<float>(model_fixture("imu_final.npy"))) <=
        1e-5);
  CHECK(relative_error(out.at(Modality::kDepth).value(),
                       io::read_npy<float>(model_fixture("depth_final.npy"))) <= 1e-5);
}

TEST_CASE("imagebind: strict loading names wrong keys and shapes and changes nothing",
          "[models][imagebind]") {
  ib::ImageBindModel<float> model(ib::ImageBindConfig::tiny(), {Modality::kDepth, Modality::kText});
  const auto full = io::load_pth<float>(model_fixture("tiny.pth"));
  auto dict_with = [&](const std::string& drop, const std::string& add, const Tensor<float>& value) {
    nn::StateDict<float> dict;
    for (const auto& [key, tensor] : full) {
      if (key != drop) dict.insert(key, tensor);
    }
    if (!add.empty()) dict.insert(add, value);
    return dict;
  };
  const auto before = model.state_dict().at("modality_trunks.depth.blocks.0.attn.bias_k").clone();
  const std::string renamed = "modality_trunks.depth.blocks.0.attn.bias_key";
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      model.load_weights(dict_with("modality_trunks.depth.blocks.0.attn.bias_k", renamed,
                                   Tensor<float>::zeros(Shape{1, 1, 16}))),
      nn::StateDictError, "missing keys (1): modality_trunks.depth.blocks.0.attn.bias_k",
      "unexpected keys (1)", renamed.c_str());
  const std::string stem = "modality_preprocessors.depth.depth_stem.proj.weight";
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      model.load_weights(dict_with(stem, stem, Tensor<float>::zeros(Shape{16, 1, 16, 16}))),
      nn::StateDictError, stem.c_str(), "(16, 1, 16, 16)", "(16, 1, 56, 56)");
  // A key outside the stage containers is unexpected; keys of modalities not held are skipped.
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      model.load_weights(dict_with("", "logit_scale", Tensor<float>::zeros(Shape{1}))), nn::StateDictError,
      "unexpected keys (1): logit_scale");
  CHECK(model.state_dict().at("modality_trunks.depth.blocks.0.attn.bias_k").to_vector() ==
        before.to_vector());
  const nn::LoadResult ok = model.load_weights(dict_with("", "", Tensor<float>()));
  CHECK(ok.missing_keys.empty());
  CHECK(ok.unexpected_keys.empty());
  // Files: a wrong shape in a safetensors file, and a file that is not a checkpoint.
  auto entries = std::vector<std::pair<std::string, Tensor<float>>>(full.begin(), full.end());
  for (auto& [key, tensor] : entries) {
    if (key == "modality_preprocessors.text.pos_embed") tensor = Tensor<float>::zeros(Shape{1, 76, 6});
  }
  const std::string bad = temp_path("bad_shape.safetensors");
  io::save_safetensors(bad, entries);
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.load(bad), nn::StateDictError,
                                  "modality_preprocessors.text.pos_embed", "(1, 76, 6)", "(1, 77, 6)");
  std::filesystem::remove(bad);
  CHECK_THROWS_AS(model.load(model_fixture("cases.txt")), FormatError);
}

TEST_CASE("imagebind: loading a file checks keys from its header, then streams only the held modalities",
          "[models][imagebind]") {
  // A depth checkpoint with one key missing and one extra: strict refuses before reading any weight.
  const auto full = io::load_pth<float>(model_fixture("tiny.pth"));
  std::vector<std::pair<std::string, Tensor<float>>> entries;
  const std::string dropped = "modality_trunks.depth.blocks.1.norm_1.weight";
  const std::string extra = "modality_heads.depth.surplus";
  for (const auto& [key, tensor] : full) {
    if (ib::key_modality(key) == Modality::kDepth && key != dropped) entries.emplace_back(key, tensor);
  }
  entries.emplace_back(extra, Tensor<float>::ones(Shape{2}));
  const std::string path = temp_path("depth_partial.safetensors");
  io::save_safetensors(path, entries);
  ib::ImageBindModel<float> model(ib::ImageBindConfig::tiny(), {Modality::kDepth}, 3);
  const auto before = model.state_dict().at("modality_trunks.depth.blocks.0.attn.in_proj_weight").clone();
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.load(path), nn::StateDictError, path.c_str(), "missing keys (1)",
                                  dropped.c_str(), "unexpected keys (1)", extra.c_str());
  CHECK(model.state_dict().at("modality_trunks.depth.blocks.0.attn.in_proj_weight").to_vector() ==
        before.to_vector());
  // Not strict: the rest loads, and the result names what did not fit.
  const nn::LoadResult result = model.load(path, false);
  CHECK(result.missing_keys == std::vector<std::string>{dropped});
  CHECK(result.unexpected_keys == std::vector<std::string>{extra});
  for (const auto& [key, tensor] : entries) {
    if (key == extra) continue;
    INFO(key);
    CHECK(model.state_dict().at(key).to_vector() == tensor.to_vector());
  }
  std::filesystem::remove(path);
  // From the .pth, the other modalities' keys are skipped: a text-only model loads only text.
  ib::ImageBindModel<float> text(ib::ImageBindConfig::tiny(), {Modality::kText}, 3);
  CHECK(text.load(model_fixture("tiny.pth")).missing_keys.empty());
  for (const auto& [key, tensor] : full) {
    if (ib::key_modality(key) == Modality::kText)
      CHECK(text.state_dict().at(key).to_vector() == tensor.to_vector());
  }
}

TEST_CASE("imagebind: save writes a checkpoint that loads back identically", "[models][imagebind]") {
  auto model =
      ib::ImageBindModel<float>::from_checkpoint(model_fixture("tiny.pth"), ib::ImageBindConfig::tiny());
  const std::string path = temp_path("roundtrip.safetensors");
  model->save(path);
  ib::ImageBindModel<float> copy(ib::ImageBindConfig::tiny(), {}, 7);
  copy.load(path);
  const auto a = model->state_dict(), b = copy.state_dict();
  for (const auto& [key, tensor] : a) {
    INFO(key);
    CHECK(tensor.to_vector() == b.at(key).to_vector());
  }
  std::filesystem::remove(path);
}

TEST_CASE("imagebind: bad inputs name their shapes", "[models][imagebind]") {
  ib::ImageBindModel<float> model(ib::ImageBindConfig::tiny());
  model.eval();
  NoGrad no_grad;
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.encode(Modality::kAudio, Tensor<float>::zeros(Shape{2, 1, 36, 50})),
                                  ShapeError, "(2, 1, 36, 50)", "native shape (N, 1, 36, 64)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.encode(Modality::kVision, Tensor<float>::zeros(Shape{1, 3, 28, 42})),
                                  ShapeError, "square");
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.encode(Modality::kVision, Tensor<float>::zeros(Shape{1, 1, 28, 28})),
                                  ShapeError, "(1, 1, 28, 28)");
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.encode(Modality::kText, Tensor<int64_t>::zeros(Shape{2, 70})),
                                  ShapeError, "(2, 70)", "77");
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.encode(Modality::kImu, Tensor<float>::zeros(Shape{2, 6, 1000})),
                                  ShapeError, "(2, 6, 1000)", "T = 2000");
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.encode(Modality::kText, Tensor<float>::zeros(Shape{2, 77})),
                                  ValueError, "token ids");
  BINDERY_REQUIRE_THROWS_WITH_ALL(model.encode(Modality::kDepth, Tensor<int64_t>::zeros(Shape{2, 77})),
                                  ValueError, "float values");
}

TEST_CASE("imagebind: text EOS pooling takes the first largest id", "[models][imagebind]") {
  const auto ids =
      Tensor<int64_t>::from_vector({49406, 320, 49407, 0, 0, 7, 7, 3, 49407, 49407}, Shape{2, 5});
  CHECK(ib::argmax_rows(ids).to_vector() == std::vector<int64_t>{2, 3});
  const auto mask = ib::causal_mask<float>(3);
  CHECK(mask.at({0, 0}) == 0.0f);
  CHECK(mask.at({1, 0}) == 0.0f);
  CHECK(std::isinf(mask.at({0, 1})));
  CHECK(mask.at({0, 1}) < 0);
}

TEST_CASE("imagebind: gradients reach the weights (training works)", "[models][imagebind][grad]") {
  ib::ImageBindModel<double> model(ib::ImageBindConfig::tiny(), {Modality::kText, Modality::kImu});
  model.train();
  const auto ids = io::read_npy<int64_t>(model_fixture("text_input.npy"));
  const Var<double> text = model.encode(Modality::kText, ids);  // (5, 16)
  ops::sum(text * text.detach()).backward();
  for (const auto& [key, var] : model.named_parameters()) {
    if (ib::key_modality(key) != Modality::kText) continue;
    INFO(key);
    CHECK(var.has_grad());
  }
  // The learnable logit scale gets a gradient below the clamp (its init 1/0.07) and none above 100.
  auto& post = dynamic_cast<ib::Postprocessor<double>&>(model.submodule("modality_postprocessors.text"));
  Var<double> log_scale = post.logit_scale()->log_logit_scale();
  CHECK(log_scale.grad().item() != 0.0);
  log_scale.zero_grad();
  log_scale.assign(Tensor<double>::scalar(4.8));  // exp(4.8) = 121.5
  const Var<double> clamped = model.encode(Modality::kText, ids);
  ops::sum(clamped).backward();
  CHECK(log_scale.grad().item() == 0.0);
  CHECK(post.logit_scale()->scale().item() == 100.0);
}

TEST_CASE("imagebind: gradcheck of the pieces with custom math", "[models][imagebind][grad]") {
  SECTION("position-embedding interpolation (down and up)") {
    for (int64_t target : {9, 36}) {
      require_gradcheck<Cpu>(
          [&](const std::vector<Var<double>>& in) { return ib::interpolate_pos_embed(in[0], target); },
          {random_var<double>(Shape{1, 17, 3}, 11)});
    }
  }
  SECTION("postprocessor: normalize, then times the learnable scale (the parameter is an input too)") {
    ib::Postprocessor<double> post(ib::ImageBindConfig::tiny().at(Modality::kText));
    post.logit_scale()->log_logit_scale().assign(Tensor<double>::scalar(1.5));  // exp(1.5) < 100: not clamped
    require_gradcheck<Cpu>([&](const std::vector<Var<double>>& in) { return post.forward(in[0]); },
                           {random_var<double>(Shape{3, 5}, 5), post.logit_scale()->log_logit_scale()});
  }
}
