// Tests of train/trainer.hpp and train/progress.hpp: deterministic batches, a contrastive task that
// learns, resume bit for bit (weights, AdamW state, dropout streams), the metrics log.
#include "test_util.hpp"

#include <bindery/nn/activation.hpp>
#include <bindery/nn/linear.hpp>
#include <bindery/train/trainer.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

using namespace bindery;
namespace fs = std::filesystem;

namespace {

using bindery::testing::TempDir;

/// Linear -> dropout -> Linear: a tower with a random stream that must be checkpointed.
class Tower : public nn::Module<double> {
 public:
  Tower(int64_t in, int64_t out, uint64_t seed) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear<double>>(in, 16, true, seed));
    drop = register_module("drop", std::make_shared<nn::Dropout<double>>(0.2, seed + 1));
    fc2 = register_module("fc2", std::make_shared<nn::Linear<double>>(16, out, true, seed + 2));
  }
  Var<double> forward(const Tensor<double>& x) {
    return fc2->forward(drop->forward(ops::tanh(fc1->forward(Var<double>(x)))));
  }
  std::shared_ptr<nn::Linear<double>> fc1, fc2;
  std::shared_ptr<nn::Dropout<double>> drop;
};

/// Paired views of 64 latent points: a = A z + noise, b = B z + noise.
struct Pairs {
  Tensor<double> a, b;
  explicit Pairs(int64_t n = 64) {
    Philox rng(7);
    const Tensor<double> z = Tensor<double>::normal({n, 4}, rng);
    const Tensor<double> ma = Tensor<double>::normal({4, 6}, rng), mb = Tensor<double>::normal({4, 5}, rng);
    a = (Var<double>(ops::matmul_forward(z, ma)) +
         Var<double>(Tensor<double>::normal({n, 6}, rng, 0.0, 0.05)))
            .value();
    b = (Var<double>(ops::matmul_forward(z, mb)) +
         Var<double>(Tensor<double>::normal({n, 5}, rng, 0.0, 0.05)))
            .value();
  }
  static Tensor<double> rows(const Tensor<double>& x, const std::vector<int64_t>& idx) {
    return ops::index_select_forward(x, 0, Tensor<int64_t>::from_vector(idx));
  }
};

struct Setup {
  Pairs data;
  std::shared_ptr<Tower> ta = std::make_shared<Tower>(6, 8, 1), tb = std::make_shared<Tower>(5, 8, 11);
  train::Trainer<double> trainer;
  Setup(train::TrainerOptions options, train::OptimizerFactory<double> factory = {})
      : trainer(options, {{"a", ta}, {"b", tb}},
                {train::contrastive_task<double>(
                    "a-b", 64, [this](const auto& idx) { return ta->forward(Pairs::rows(data.a, idx)); },
                    [this](const auto& idx) { return tb->forward(Pairs::rows(data.b, idx)); })},
                std::move(factory)) {}
};

train::TrainerOptions options(int64_t steps) {
  train::TrainerOptions o;
  o.steps = steps;
  o.batch_size = 16;
  o.lr = 1e-2;
  o.warmup_steps = 3;
  o.progress = false;
  o.seed = 5;
  return o;
}

std::vector<std::vector<double>> parameters(nn::Module<double>& m) {
  std::vector<std::vector<double>> out;
  for (const auto& p : m.parameters()) out.push_back(p.value().to_vector());
  return out;
}

bool bit_equal(const std::vector<std::vector<double>>& x, const std::vector<std::vector<double>>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].size() != y[i].size() ||
        std::memcmp(x[i].data(), y[i].data(), x[i].size() * sizeof(double)) != 0)
      return false;
  return true;
}

}  // namespace

TEST_CASE("EpochSampler: each epoch is a permutation, drop-last, a pure function of the step",
          "[train][trainer]") {
  train::EpochSampler s(10, 3, 42), t(10, 3, 42);
  CHECK(s.batches_per_epoch() == 3);
  std::set<int64_t> seen;
  for (int64_t step = 0; step < 3; ++step)
    for (int64_t i : s.batch(step)) CHECK(seen.insert(i).second);  // no repeat within an epoch
  CHECK(seen.size() == 9);
  CHECK(s.batch(4) == t.batch(4));  // random access: t never saw steps 0-3
  CHECK(s.batch(0) != s.batch(3));  // the next epoch is another permutation
  train::EpochSampler u(10, 3, 43);
  CHECK(u.batch(0) != t.batch(0));
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::EpochSampler(4, 5, 0), ValueError, "batch size 5", "4 samples");
}

TEST_CASE("Trainer: a contrastive task learns and logs", "[train][trainer]") {
  TempDir dir;
  train::TrainerOptions o = options(60);
  o.metrics_path = dir.file("metrics.jsonl");
  o.eval_every = 30;
  Setup s(o);
  int evaluations = 0;
  s.trainer.set_evaluator([&](int64_t step) {
    ++evaluations;
    CHECK(!GradMode::is_enabled());
    CHECK(!s.ta->is_training());
    return nlohmann::json{{"step_seen", step}};
  });
  const train::TrainResult r = s.trainer.run();
  CHECK(evaluations == 2);
  CHECK(s.ta->is_training());
  // ln(16) = 2.77 at chance; the pairs share a 4-D latent, so the loss must fall far below it.
  CHECK(r.final_loss.at("a-b") < 1.0);
  const auto log = train::read_metrics(o.metrics_path);
  REQUIRE(log.size() == 6 + 2);  // 60 / 10 loss lines + 2 evaluations
  CHECK(log[0]["step"] == 10);
  CHECK(log[0]["loss"]["a-b"].get<double>() > r.final_loss.at("a-b"));
  CHECK(log.back()["eval"]["step_seen"] == 60);
}

TEST_CASE("Trainer: resume continues bit for bit", "[train][trainer]") {
  TempDir dir;
  std::vector<std::vector<double>> straight;
  std::vector<double> straight_log;
  {
    Setup s(options(40));
    s.trainer.run();
    straight = parameters(s.trainer.model());
  }
  for (int64_t stop : {13, 20}) {
    const std::string ck = dir.file("ck" + std::to_string(stop));
    {
      train::TrainerOptions o = options(40);
      o.stop_at = stop;
      o.checkpoint_dir = ck;
      o.checkpoint_every = 5;
      Setup first(o);
      first.trainer.run();  // stops after `stop` steps: a run that was cut short
    }
    train::TrainerOptions o = options(40);
    o.checkpoint_dir = ck;
    o.resume = true;
    Setup second(o);  // fresh objects: weights, AdamW state and dropout streams come from the file
    const train::TrainResult r = second.trainer.run();
    CHECK(r.start_step == stop);
    CHECK(bit_equal(parameters(second.trainer.model()), straight));
  }
}

TEST_CASE("Trainer: SGD by name or by factory trains and resumes bit for bit", "[train][trainer]") {
  TempDir dir;
  train::TrainerOptions sgd = options(20);
  sgd.optimizer = "sgd";
  sgd.lr = 0.05;
  std::vector<std::vector<double>> straight;
  {
    Setup s(sgd);
    REQUIRE(s.trainer.optimizer().type_name() == "SGD");
    const auto before = parameters(s.trainer.model());
    s.trainer.run();
    straight = parameters(s.trainer.model());
    REQUIRE(!bit_equal(before, straight));
  }
  {
    train::TrainerOptions o = sgd;
    o.stop_at = 9;
    o.checkpoint_dir = dir.file("sgd");
    o.checkpoint_every = 4;
    Setup first(o);
    first.trainer.run();
    o.stop_at = -1;
    o.resume = true;
    Setup second(o);  // fresh objects: weights, momentum buffers and streams come from the file
    CHECK(second.trainer.run().start_step == 9);
    CHECK(bit_equal(parameters(second.trainer.model()), straight));
    // An AdamW trainer refuses the SGD checkpoint.
    train::TrainerOptions adamw = o;
    adamw.optimizer = "adamw";
    Setup third(adamw);
    BINDERY_REQUIRE_THROWS_WITH_ALL(third.trainer.run(), ValueError, "SGD", "not AdamW");
  }
  // A factory receives the two groups (decayed matrices, undecayed vectors) and builds the same SGD.
  size_t group_count = 0;
  train::TrainerOptions named_otherwise = sgd;
  named_otherwise.optimizer = "ignored with a factory";
  Setup by_factory(named_otherwise, [&](std::vector<optim::ParamGroup<double>> groups) {
    group_count = groups.size();
    CHECK((groups[0].weight_decay == 0.05 && groups[0].lr == 0.05 && groups[0].initial_lr == 0.05));
    CHECK(groups[1].weight_decay == 0.0);
    return std::make_unique<optim::Sgd<double>>(std::move(groups), optim::SgdOptions{.momentum = 0.9});
  });
  REQUIRE(group_count == 2);
  by_factory.trainer.run();
  CHECK(bit_equal(parameters(by_factory.trainer.model()), straight));

  REQUIRE(Setup(options(5)).trainer.optimizer().type_name() == "AdamW");  // the default
  train::TrainerOptions unknown = options(5);
  unknown.optimizer = "rmsprop";
  BINDERY_REQUIRE_THROWS_WITH_ALL(Setup{unknown}, ValueError, "\"rmsprop\"", "adamw", "sgd");
}

TEST_CASE("Trainer: cache_embeddings, classification task, bad tasks", "[train][trainer]") {
  Pairs data;
  Tower t(6, 3, 3);
  t.eval();  // dropout off: the cache must equal a direct forward
  const Tensor<double> cached = train::cache_embeddings<double, Cpu>(
      64, 10, [&](const std::vector<int64_t>& idx) { return t.forward(Pairs::rows(data.a, idx)); });
  CHECK(cached.shape() == Shape{64, 3});
  {
    NoGrad no_grad;
    const Tensor<double> direct = t.forward(data.a).value();
    // Same values; batches of 10 vs 64 may round differently in the GEMM (blocking), so not bitwise.
    const auto a = cached.to_vector(), b = direct.to_vector();
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) CHECK(a[k] == Approx(b[k]).margin(1e-12));
  }

  auto tower = std::make_shared<Tower>(6, 3, 3);
  train::TrainerOptions o = options(80);
  // class = sign pattern of the first latent direction, learnable from a
  auto label = [&](int64_t i) {
    return data.a.to_vector()[static_cast<size_t>(i * 6)] > 0 ? int64_t{1} : int64_t{0};
  };
  {
    train::Trainer<double> trainer(
        o, {{"t", tower}},
        {train::classification_task<double>(
            "cls", 64, [&](const auto& idx) { return tower->forward(Pairs::rows(data.a, idx)); }, label)});
    const train::TrainResult r = trainer.run();
    CHECK(r.final_loss.at("cls") < 0.4);
  }
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::Trainer<double>(o, {}, {}), ValueError, "no tasks");
}

TEST_CASE("ProgressBar and MetricsLog", "[train][progress]") {
  TempDir dir;
  CHECK(train::format_duration(65) == "1:05");
  CHECK(train::format_duration(3725) == "1:02:05");
  const std::string path = dir.file("bar.txt");
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    {
      train::ProgressBar bar("unit", 100, "samples", f);
      for (int64_t i = 1; i <= 100; ++i) bar.update(i, {{"loss", 1.0 / static_cast<double>(i)}}, 8);
      bar.message("a note");
    }
    std::fclose(f);
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  // not a TTY: one line per 10% (deciles 0..10 -> at most 11 lines) plus the message
  CHECK(lines.size() >= 10);
  CHECK(lines.size() <= 12);
  CHECK(lines.back().find("a note") != std::string::npos);
  CHECK(lines[lines.size() - 2].find("100/100 100%") != std::string::npos);
  CHECK(lines[lines.size() - 2].find("took") != std::string::npos);

  const std::string log_path = dir.file("m.jsonl");
  {
    train::MetricsLog log(log_path);
    log.write({{"step", 1}});
    log.write({{"step", 2}});
  }
  { std::ofstream(log_path, std::ios::app) << "{\"step\": 3, \"tor"; }  // a torn line of a killed writer
  const auto records = train::read_metrics(log_path);
  REQUIRE(records.size() == 2);
  CHECK(records[1]["step"] == 2);
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::MetricsLog(dir.file("no/such/folder/m.jsonl")), IoError,
                                  "no/such/folder");
}

namespace {

/// The contrastive setup in float (autocast applies to float GEMMs only).
struct FloatSetup {
  Tensor<float> a, b;
  std::shared_ptr<nn::Linear<float>> fa1 = std::make_shared<nn::Linear<float>>(6, 32, true, 1),
                                     fa2 = std::make_shared<nn::Linear<float>>(32, 8, true, 2),
                                     fb1 = std::make_shared<nn::Linear<float>>(5, 32, true, 3),
                                     fb2 = std::make_shared<nn::Linear<float>>(32, 8, true, 4);
  std::unique_ptr<train::Trainer<float>> trainer;
  explicit FloatSetup(const train::TrainerOptions& o) {
    const Pairs pairs;
    a = pairs.a.cast<float>();
    b = pairs.b.cast<float>();
    auto rows = [](const Tensor<float>& x, const std::vector<int64_t>& idx) {
      return Var<float>(ops::index_select_forward(x, 0, Tensor<int64_t>::from_vector(idx)));
    };
    trainer = std::make_unique<train::Trainer<float>>(
        o, std::vector<train::Trainer<float>::Named>{{"a1", fa1}, {"a2", fa2}, {"b1", fb1}, {"b2", fb2}},
        std::vector<train::Task<float>>{train::contrastive_task<float>(
            "a-b", 64,
            [this, rows](const auto& idx) { return fa2->forward(ops::gelu(fa1->forward(rows(a, idx)))); },
            [this, rows](const auto& idx) { return fb2->forward(ops::gelu(fb1->forward(rows(b, idx)))); })});
  }
};

}  // namespace

TEST_CASE("Trainer: bf16 and fp16 (loss-scaled) precision learn like fp32; the scale is checkpointed",
          "[train][trainer][amp]") {
  std::map<Precision, double> final_loss;
  for (const Precision precision : {Precision::kFloat32, Precision::kBFloat16, Precision::kFloat16}) {
    TempDir dir;
    train::TrainerOptions o = options(60);
    o.precision = precision;
    o.metrics_path = dir.file("metrics.jsonl");
    o.checkpoint_dir = dir.file("ck");
    o.checkpoint_every = 30;
    FloatSetup s(o);
    final_loss[precision] = s.trainer->run().final_loss.at("a-b");
    const auto log = train::read_metrics(o.metrics_path);
    REQUIRE(!log.empty());
    // fp16 logs its loss scale and skipped steps; the first steps overflow at 65536 and back off.
    CHECK(log.back().contains("loss_scale") == (precision == Precision::kFloat16));
    if (precision == Precision::kFloat16) {
      const double scale = log.back()["loss_scale"].get<double>();
      CHECK(scale > 0.0);
      CHECK(scale <= 65536.0);
      // Resuming restores the scale from the checkpoint's user section.
      const auto info =
          train::verify_checkpoint(train::latest_valid_checkpoint(o.checkpoint_dir).path.value());
      CHECK(info.user.at("grad_scaler").at("scale").get<double>() == scale);
      train::TrainerOptions again = o;
      again.resume = true;
      FloatSetup resumed(again);
      CHECK(resumed.trainer->run().start_step == 60);
    }
  }
  INFO("final losses fp32 " << final_loss[Precision::kFloat32] << ", bf16 "
                            << final_loss[Precision::kBFloat16] << ", fp16 "
                            << final_loss[Precision::kFloat16]);
  for (const auto& [precision, loss] : final_loss) CHECK(loss < 1.0);  // ln 16 = 2.77 at chance
  CHECK(std::fabs(final_loss[Precision::kBFloat16] - final_loss[Precision::kFloat32]) < 0.15);
  CHECK(std::fabs(final_loss[Precision::kFloat16] - final_loss[Precision::kFloat32]) < 0.05);
}
