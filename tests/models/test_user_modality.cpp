// Open modalities: a modality of the user's own lives in ImageBindModel — built from a public
// EncoderSpec or from any module of the user's — and is trained, saved, loaded and encoded with the
// built-in ones, under the reference's key layout.
#include "test_util.hpp"

#include <cmath>
#include <filesystem>
#include <set>

#include <bindery/train/trainer.hpp>

#include "imagebind_fixtures.hpp"

using namespace bindery;
using namespace bindery::testing;
namespace ib = bindery::models::imagebind;
using ib::Modality;

namespace {

const Modality kTrajectory("trajectory");

std::string user_temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("bindery_test_user_modality_" + name)).string();
}

/// A user modality described by a spec: 3 channels x 64 steps, IMU-style time patches.
ib::EncoderSpec trajectory_spec(int64_t out_dim) {
  return {.stem = ib::StemKind::kImuPatches,
          .stem_key = "imu_stem",
          .input_shape = {3, 64},
          .kernel = {8},
          .embed_dim = 16,
          .num_blocks = 1,
          .num_heads = 2,
          .add_bias_kv = true,
          .out_dim = out_dim,
          .logit_scale = 5.0};
}

/// tiny()'s vision and text, plus the trajectory modality.
ib::ImageBindConfig config_with_trajectory() {
  ib::ImageBindConfig tiny = ib::ImageBindConfig::tiny();
  ib::ImageBindConfig config;
  config.encoders[Modality::kVision] = tiny.at(Modality::kVision);
  config.encoders[Modality::kText] = tiny.at(Modality::kText);
  config.encoders[kTrajectory] = trajectory_spec(tiny.at(Modality::kVision).out_dim);
  return config;
}

/// A module of the user's own: a residual MLP on flat vectors.
class TrajectoryMlp : public nn::Module<float> {
 public:
  TrajectoryMlp(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
    fc1_ = register_module("fc1",
                           std::make_shared<nn::Linear<float>>(in, hidden, nn::LinearOptions{.seed = seed}));
    proj_ = register_module("proj", std::make_shared<nn::Linear<float>>(
                                        hidden, out, nn::LinearOptions{.bias = false, .seed = seed + 1}));
  }
  Var<float> forward(const Tensor<float>& x) {
    return proj_->forward(ops::gelu(fc1_->forward(Var<float>(x))));
  }

 private:
  std::shared_ptr<nn::Linear<float>> fc1_, proj_;
};

Tensor<float> random_tensor(const Shape& shape, uint64_t seed) {
  Philox rng(seed);
  return Tensor<float>::normal(shape, rng);
}

std::set<std::string> keys_of(const nn::Module<float>& m) {
  std::set<std::string> keys;
  for (const auto& [key, value] : m.state_dict()) keys.insert(key);
  return keys;
}

}  // namespace

TEST_CASE("modality: names, order, validation", "[models][imagebind][modality]") {
  static_assert(Modality::kAudio.is_builtin() && Modality::kAudio.builtin_index() == 2);
  static_assert(Modality::kVision < Modality::kText && Modality::kImu < Modality("aardvark"));
  CHECK(Modality("audio") == Modality::kAudio);
  CHECK(std::string(ib::modality_name(kTrajectory)) == "trajectory");
  CHECK_FALSE(kTrajectory.is_builtin());
  CHECK(kTrajectory.builtin_index() == -1);
  CHECK(Modality("alpha") < Modality("beta"));
  // std::map order: the reference's six first, then the user's by name.
  std::map<Modality, int> order{
      {Modality("zeta"), 0}, {Modality::kImu, 0}, {Modality("alpha"), 0}, {Modality::kVision, 0}};
  std::vector<std::string> names;
  for (const auto& [m, v] : order) names.emplace_back(m.name());
  CHECK(names == std::vector<std::string>{"vision", "imu", "alpha", "zeta"});
  for (const char* bad :
       {"", "Trajectory", "has.dot", "1st", "with space", "a_name_that_is_much_longer_than_31_chars"}) {
    INFO(bad);
    BINDERY_REQUIRE_THROWS_WITH_ALL(Modality{std::string_view(bad)}, ValueError, "Modality", "invalid name");
  }
  // The built-in seeds are the enum indices they were: models built before keep their weights.
  for (size_t i = 0; i < ib::kModalities.size(); ++i) CHECK(ib::modality_seed_index(ib::kModalities[i]) == i);
  CHECK(ib::modality_seed_index(kTrajectory) != ib::modality_seed_index(Modality("trajectorz")));
  CHECK(ib::key_modality("modality_trunks.trajectory.blocks.0.norm_1.weight") == kTrajectory);
  CHECK_FALSE(ib::key_modality("modality_trunks.Bad Name.x").has_value());
}

TEST_CASE("user modality from a spec: keys, config JSON, save and load", "[models][imagebind][modality]") {
  const ib::ImageBindConfig config = config_with_trajectory();
  ib::ImageBindModel<float> model(config, {}, 7);
  CHECK(model.modalities() == std::vector<Modality>{Modality::kVision, Modality::kText, kTrajectory});
  const std::set<std::string> keys = keys_of(model);
  CHECK(keys.count("modality_preprocessors.trajectory.imu_stem.proj.weight") == 1);
  CHECK(keys.count("modality_trunks.trajectory.blocks.0.attn.in_proj_weight") == 1);
  CHECK(keys.count("modality_heads.trajectory.2.weight") == 1);  // the cls-token head's Linear
  CHECK(keys.count("modality_postprocessors.trajectory.1.log_logit_scale") == 1);
  // The built-in encoders are the ones a model without the user modality builds (same seeds).
  ib::ImageBindModel<float> builtin_only(config, {Modality::kVision, Modality::kText}, 7);
  for (const auto& [key, value] : builtin_only.state_dict()) {
    INFO(key);
    REQUIRE(model.state_dict().contains(key));
    CHECK(model.state_dict().at(key).to_vector() == value.to_vector());
  }

  // JSON: the user modality is declared in "extra_modalities"; an undeclared unknown name is an error.
  const auto j = ib::to_json(config);
  REQUIRE(j.contains("extra_modalities"));
  CHECK(j["extra_modalities"] == nlohmann::ordered_json::array({"trajectory"}));
  CHECK(ib::to_json(ib::imagebind_config_from_json(j)) == j);
  auto undeclared = j;
  undeclared.erase("extra_modalities");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::imagebind_config_from_json(undeclared), ValueError, "trajectory",
                                  "extra_modalities");
  auto dangling = j;
  dangling["extra_modalities"].push_back("smell");
  BINDERY_REQUIRE_THROWS_WITH_ALL(ib::imagebind_config_from_json(dangling), ValueError, "smell");
  CHECK_FALSE(ib::to_json(ib::ImageBindConfig::tiny()).contains("extra_modalities"));  // unchanged files

  // Save, then a model built from the saved config loads it and encodes the same.
  const std::string weights = user_temp_path("model.safetensors"),
                    config_path = user_temp_path("config.json");
  model.save(weights);
  ib::save_config(model.config(), config_path);
  auto loaded =
      ib::ImageBindModel<float>::from_checkpoint(weights, ib::load_config(config_path), {kTrajectory});
  model.eval();
  NoGrad no_grad;
  const Tensor<float> x = random_tensor({5, 3, 64}, 3);
  const Tensor<float> a = model.encode(kTrajectory, x).value(), b = loaded->encode(kTrajectory, x).value();
  CHECK(a.shape() == Shape{5, 16});
  CHECK(a.to_vector() == b.to_vector());
  std::filesystem::remove(weights);
  std::filesystem::remove(config_path);
}

TEST_CASE("user modality: a module of your own inside the model, trained, saved, loaded",
          "[models][imagebind][modality]") {
  const ib::ImageBindConfig tiny = ib::ImageBindConfig::tiny();
  const int64_t joint = tiny.at(Modality::kVision).out_dim;
  const Modality mlp_modality("pen_mlp");
  auto model = std::make_shared<ib::ImageBindModel<float>>(tiny, std::vector<Modality>{Modality::kDepth}, 1);
  model->add_encoder(mlp_modality, ib::make_module_encoder(std::make_shared<TrajectoryMlp>(12, 32, joint, 5),
                                                           {.logit_scale = 10.0}));
  CHECK(model->has(mlp_modality));
  CHECK_FALSE(model->config().has(mlp_modality));  // a C++ module has no spec
  const std::set<std::string> keys = keys_of(*model);
  CHECK(keys.count("modality_trunks.pen_mlp.fc1.weight") == 1);
  CHECK(keys.count("modality_trunks.pen_mlp.proj.weight") == 1);
  CHECK(keys.count("modality_postprocessors.pen_mlp.1.log_logit_scale") == 1);

  // Errors: the same modality twice, an encoder with children that are not stages.
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      model->add_encoder(mlp_modality,
                         ib::make_module_encoder(std::make_shared<TrajectoryMlp>(12, 32, joint, 5))),
      ValueError, "pen_mlp", "already held");
  class Odd : public ib::Encoder<float> {
   public:
    Odd() { this->register_module("extra", std::make_shared<nn::Linear<float>>(2, 2)); }
    ib::EncoderStages<float> forward_stages(const ib::ModalityInput<float>&) override { return {}; }
  };
  BINDERY_REQUIRE_THROWS_WITH_ALL(model->add_encoder(Modality("odd"), std::make_shared<Odd>()), ValueError,
                                  "odd", "extra", "stages");

  // Trained by the Trainer, through the model: InfoNCE against the (frozen) depth encoder.
  model->encoder(Modality::kDepth).set_requires_grad(false);
  const int64_t n = 32;
  const Tensor<float> depth = random_tensor({n, 1, 224, 224}, 11);
  const Tensor<float> features = random_tensor({n, 12}, 12);
  auto rows = [](const Tensor<float>& t, const std::vector<int64_t>& idx) {
    return ops::index_select_forward(t, 0, Tensor<int64_t>::from_vector(idx));
  };
  train::TrainerOptions options;
  options.steps = 12;
  options.batch_size = 16;
  options.lr = 5e-3;
  options.progress = false;
  train::Trainer<float> trainer(
      options, {{"pen_mlp", model->encoder_ptr(mlp_modality)}},
      {train::contrastive_task<float>(
          "pen_mlp", n,
          [&](const std::vector<int64_t>& idx) { return model->encode(Modality::kDepth, rows(depth, idx)); },
          [&](const std::vector<int64_t>& idx) {
            return model->encode(mlp_modality, rows(features, idx));
          })});
  const Tensor<float> before = model->state_dict().at("modality_trunks.pen_mlp.fc1.weight").clone();
  const train::TrainResult result = trainer.run();
  CHECK(result.steps == 12);
  CHECK(model->state_dict().at("modality_trunks.pen_mlp.fc1.weight").to_vector() != before.to_vector());

  // Save the whole model; a fresh model with a freshly built module of the same class loads it.
  const std::string weights = user_temp_path("mlp.safetensors");
  model->save(weights);
  ib::ImageBindModel<float> fresh(tiny, {Modality::kDepth}, 99);
  fresh.add_encoder(mlp_modality, ib::make_module_encoder(std::make_shared<TrajectoryMlp>(12, 32, joint, 77),
                                                          {.logit_scale = 10.0}));
  fresh.load(weights);
  model->eval();
  fresh.eval();
  NoGrad no_grad;
  const Tensor<float> a = model->encode(mlp_modality, features).value();
  const Tensor<float> b = fresh.encode(mlp_modality, features).value();
  CHECK(a.to_vector() == b.to_vector());
  // Normalized and scaled by 10, as an ImageBind postprocessor.
  const std::vector<float> v = a.to_vector();
  double norm = 0;
  for (int64_t k = 0; k < joint; ++k)
    norm += static_cast<double>(v[static_cast<size_t>(k)]) * v[static_cast<size_t>(k)];
  CHECK(std::sqrt(norm) == Approx(10.0).epsilon(1e-5));
  // A model without the user modality loads the same file: keys of modalities not held are skipped
  // unread, the user's as the built-in ones, and the held ones are read.
  ib::ImageBindModel<float> without(tiny, {Modality::kDepth});
  CHECK_NOTHROW(without.load(weights));
  CHECK(without.state_dict().at("modality_trunks.depth.blocks.0.attn.in_proj_weight").to_vector() ==
        model->state_dict().at("modality_trunks.depth.blocks.0.attn.in_proj_weight").to_vector());
  std::filesystem::remove(weights);
}
