// Tests of train/checkpoint.hpp: exact round trip, keep-last-K, bit-identical resume, SIGKILL at
// random moments (child processes), damaged files, and models that do not fit.
#include "test_util.hpp"

#include <bindery/train/checkpoint.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

extern char** environ;

using namespace bindery;
namespace fs = std::filesystem;

namespace {

using bindery::testing::TempDir;

/// fc1 -> gelu -> dropout -> fc2 -> LayerNorm, plus a persistent buffer and a parameter that never
/// gets a gradient (its AdamW state stays empty: step 0, undefined moments).
template <class T>
class Net : public nn::Module<T> {
 public:
  Net(int64_t dim, int64_t hidden, uint64_t seed, double p = 0.1) {
    fc1 = this->register_module("fc1", std::make_shared<nn::Linear<T>>(dim, hidden, true, seed));
    drop = this->register_module("drop", std::make_shared<nn::Dropout<T>>(p, seed + 1));
    fc2 = this->register_module("fc2", std::make_shared<nn::Linear<T>>(hidden, dim, true, seed + 2));
    norm = this->register_module("norm", std::make_shared<nn::LayerNorm<T>>(dim));
    unused = this->register_parameter("unused", Tensor<T>::full({3}, T(0.25)));
    scale = this->register_buffer("scale", Tensor<T>::full({dim}, T(0.5)));
  }
  Var<T> forward(const Var<T>& x) {
    return norm->forward(fc2->forward(drop->forward(ops::gelu(fc1->forward(x)))));
  }
  std::shared_ptr<nn::Linear<T>> fc1, fc2;
  std::shared_ptr<nn::Dropout<T>> drop;
  std::shared_ptr<nn::LayerNorm<T>> norm;
  Var<T> unused;
  Tensor<T> scale;
};

/// The options a Run gives its optimizer by default: AdamW's defaults; SGD with momentum (so that
/// it has state to checkpoint).
template <class Opt>
typename Opt::Options default_options() {
  if constexpr (std::is_same_v<typename Opt::Options, optim::SgdOptions>) {
    return {.momentum = 0.9};
  } else {
    return {};
  }
}

/// A deterministic training run: batches are rows [cursor, cursor + batch) of a fixed table plus
/// noise from the "sampler" stream; dropout from the model's stream; an optimizer `Opt` (AdamW or
/// SGD) with two groups and a warmup-cosine schedule (so the groups' initial_lr matters after a
/// resume).
template <class T, class Opt = optim::AdamW<T>>
struct Run {
  static constexpr int64_t kBatch = 8, kRows = 64;
  int64_t dim, hidden;
  std::shared_ptr<Net<T>> net;
  std::unique_ptr<Opt> opt;
  Philox sampler{1234};
  int64_t step = 0, cursor = 0;
  Tensor<T> inputs, targets;
  optim::WarmupCosine schedule{.base_lr = 1e-2, .min_lr = 1e-4, .warmup_steps = 3, .total_steps = 40};

  Run(int64_t dim_, int64_t hidden_, uint64_t seed = 1,
      typename Opt::Options options = default_options<Opt>(), bool one_group = false)
      : dim(dim_), hidden(hidden_), net(std::make_shared<Net<T>>(dim_, hidden_, seed)) {
    std::vector<optim::ParamGroup<T>> groups(one_group ? 1 : 2);
    groups[0].lr = 1e-2;
    groups[0].weight_decay = 0.05;
    if (!one_group) {
      groups[1].lr = 2e-2 / 3.0;  // no short decimal form: must still reload exactly
      groups[1].weight_decay = 0.0;
    }
    for (const auto& [name, p] : net->named_parameters())
      groups[one_group || p.rank() >= 2 ? 0 : 1].params.push_back(p);
    opt = std::make_unique<Opt>(groups, options);
    Philox data(99);
    inputs = Tensor<T>::uniform({kRows, dim}, data, -1.0, 1.0);
    targets = Tensor<T>::uniform({kRows, dim}, data, -1.0, 1.0);
  }

  void train_step() {
    schedule.apply(*opt, step);
    opt->zero_grad();
    const int64_t row = cursor % kRows;
    const Tensor<T> noise = Tensor<T>::uniform({kBatch, dim}, sampler, -0.1, 0.1);
    const Var<T> x(ops::add_forward(inputs.slice(0, row, row + kBatch).contiguous(), noise));
    const Var<T> target(targets.slice(0, row, row + kBatch).contiguous());
    const Var<T> d = net->forward(x) - target;
    Var<T> loss = ops::mean(d * d);
    loss.backward();
    opt->step();
    ++step;
    cursor += kBatch;
  }
  std::map<std::string, Philox> rngs() const {
    return {{"sampler", sampler}, {"drop", net->drop->generator()}};
  }
  std::string save(const std::string& dir, int keep_last) {
    return train::save_checkpoint(dir, step, *net, *opt, rngs(), cursor, {{"run", "test"}}, keep_last);
  }
  train::CheckpointInfo load(const std::string& path) {
    std::map<std::string, Philox> streams;
    train::CheckpointInfo info = train::load_checkpoint(path, *net, *opt, streams);
    step = info.step;
    cursor = info.cursor;
    sampler = streams.at("sampler");
    net->drop->generator() = streams.at("drop");
    return info;
  }
};

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  const std::vector<T> x = a.to_vector(), y = b.to_vector();
  return a.shape() == b.shape() && std::memcmp(x.data(), y.data(), x.size() * sizeof(T)) == 0;
}

/// REQUIRE two runs hold bit-identical weights, buffers, optimizer state, groups, streams and cursor.
template <class T, class Opt>
void require_same_state(Run<T, Opt>& a, Run<T, Opt>& b) {
  const auto da = a.net->state_dict(), db = b.net->state_dict();
  REQUIRE(da.keys() == db.keys());
  for (const auto& [key, value] : da) {
    INFO("model key " << key);
    REQUIRE(same_bits(value, db.at(key)));
  }
  if constexpr (std::is_same_v<Opt, optim::AdamW<T>>) {
    const auto& sa = a.opt->state();
    const auto& sb = b.opt->state();
    REQUIRE(sa.size() == sb.size());
    for (size_t k = 0; k < sa.size(); ++k) {
      INFO("optimizer parameter " << k);
      REQUIRE(sa[k].step == sb[k].step);
      REQUIRE(same_bits(sa[k].exp_avg, sb[k].exp_avg));
      REQUIRE(same_bits(sa[k].exp_avg_sq, sb[k].exp_avg_sq));
    }
  }
  // Every optimizer, through its state dict (SGD's momentum buffers).
  const auto oa = a.opt->state_dict(), ob = b.opt->state_dict();
  REQUIRE(oa.hyper == ob.hyper);
  REQUIRE(oa.tensors.size() == ob.tensors.size());
  for (const auto& [name, tensor] : oa.tensors) {
    INFO("optimizer tensor " << name);
    REQUIRE(ob.tensors.count(name) == 1);
    REQUIRE(same_bits(tensor, ob.tensors.at(name)));
  }
  REQUIRE(a.opt->groups().size() == b.opt->groups().size());
  for (size_t g = 0; g < a.opt->groups().size(); ++g) {
    REQUIRE(a.opt->groups()[g].lr == b.opt->groups()[g].lr);
    REQUIRE(a.opt->groups()[g].weight_decay == b.opt->groups()[g].weight_decay);
    REQUIRE(a.opt->groups()[g].initial_lr == b.opt->groups()[g].initial_lr);
  }
  REQUIRE(a.rngs() == b.rngs());
  REQUIRE(a.step == b.step);
  REQUIRE(a.cursor == b.cursor);
}

std::vector<std::string> folder_names(const std::string& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}
bool has_temp_file(const std::string& dir) {
  for (const auto& name : folder_names(dir)) {
    if (name.find(".safetensors.tmp.") != std::string::npos) return true;
  }
  return false;
}
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

constexpr int64_t kKillDim = 64, kKillHidden = 384, kKillSteps = 50;

}  // namespace

TEMPLATE_TEST_CASE("checkpoint: save/load round trip is exact", "[train][checkpoint]", float, double) {
  using T = TestType;
  TempDir dir;
  Run<T> a(6, 10, /*seed=*/1);
  a.net->scale.fill_(T(1.75));
  for (int i = 0; i < 3; ++i) a.train_step();
  // Optimizer order: group 0 = fc1.weight, fc2.weight; group 1 = unused, fc1.bias, fc2.bias, norm.*.
  REQUIRE(a.opt->state()[2].step == 0);  // `unused`: no gradient, empty state
  REQUIRE(!a.opt->state()[2].exp_avg.defined());

  std::map<std::string, Philox> rngs = a.rngs();
  rngs["extreme"] = Philox(~uint64_t{0}, ~uint64_t{0} - 1);  // uint64 must survive (JSON doubles would not)
  const nlohmann::json user = {{"label", "round trip"}, {"nested", {{"values", {1, 2, 3}}, {"pi", 3.14159}}}};
  const std::string path = train::save_checkpoint(dir.str(), a.step, *a.net, *a.opt, rngs, a.cursor, user, 3);
  REQUIRE(path == dir.file("step-00000003.safetensors"));
  REQUIRE(train::list_checkpoints(dir.str()) == std::vector<std::string>{path});

  // The file is plain safetensors with the documented names.
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  for (const char* key : {"model.fc1.weight", "model.norm.bias", "model.scale", "model.unused",
                          "optim.0.exp_avg", "optim.0.exp_avg_sq"})
    CHECK(file.contains(key));
  CHECK(!file.contains("optim.2.exp_avg"));  // `unused` has no moments
  CHECK(file.metadata().count("bindery.checkpoint") == 1);

  Run<T> b(6, 10, /*seed=*/77);  // other initial weights and dropout stream
  b.sampler = Philox(5);
  std::map<std::string, Philox> loaded_rngs;
  const train::CheckpointInfo info = train::load_checkpoint(path, *b.net, *b.opt, loaded_rngs);
  b.step = info.step;
  b.cursor = info.cursor;
  b.sampler = loaded_rngs.at("sampler");
  b.net->drop->generator() = loaded_rngs.at("drop");
  REQUIRE(loaded_rngs == rngs);
  REQUIRE(loaded_rngs.at("extreme").seed() == ~uint64_t{0});
  REQUIRE(loaded_rngs.at("extreme").offset() == ~uint64_t{0} - 1);
  REQUIRE(info.user == user);
  REQUIRE(info.step == 3);
  REQUIRE(info.cursor == 3 * Run<T>::kBatch);
  REQUIRE(info.dtype == (sizeof(T) == 4 ? "F32" : "F64"));
  REQUIRE(info.path == path);
  require_same_state(a, b);
  REQUIRE(b.opt->groups()[1].lr == a.opt->groups()[1].lr);  // a double with no short decimal form

  const train::CheckpointInfo verified = train::verify_checkpoint(path);
  REQUIRE(verified.step == 3);
  REQUIRE(verified.rngs == rngs);
}

TEST_CASE("checkpoint: keep_last keeps the newest K and cleans stale temporary files",
          "[train][checkpoint]") {
  TempDir dir;
  Run<float> run(4, 6);
  fs::create_directories(dir.path);
  // A temporary file of a killed writer (io::AtomicFileWriter's name pattern), and foreign files.
  write_bytes(dir.file("step-00000003.safetensors.tmp.Ab12Cd"), "torn");
  write_bytes(dir.file("notes.txt"), "mine");
  write_bytes(dir.file("other.tmp.123456"), "not a checkpoint");
  std::vector<std::string> written;
  for (int i = 0; i < 5; ++i) {
    run.train_step();
    written.push_back(run.save(dir.str(), /*keep_last=*/2));
  }
  REQUIRE(train::list_checkpoints(dir.str()) == std::vector<std::string>{written[3], written[4]});
  REQUIRE(folder_names(dir.str()) == std::vector<std::string>{".bindery-checkpoint.lock", "notes.txt",
                                                              "other.tmp.123456", "step-00000004.safetensors",
                                                              "step-00000005.safetensors"});
  REQUIRE(train::latest_checkpoint(dir.str()) == written[4]);
  for (const auto& path : train::list_checkpoints(dir.str())) train::verify_checkpoint(path);

  // Order is by step, not by name; keep_last 0 keeps everything; an older step just written is kept.
  run.step = 99999999;
  run.save(dir.str(), 0);
  run.step = 100000000;
  const std::string big = run.save(dir.str(), 0);
  REQUIRE(big == dir.file("step-100000000.safetensors"));
  REQUIRE(train::list_checkpoints(dir.str()).size() == 4);
  REQUIRE(train::latest_checkpoint(dir.str()) == big);
  run.step = 1;
  const std::string old = run.save(dir.str(), 1);
  REQUIRE(train::list_checkpoints(dir.str()) == std::vector<std::string>{old, big});
  REQUIRE(!has_temp_file(dir.str()));

  REQUIRE(train::checkpoint_filename(1234) == "step-00001234.safetensors");
  REQUIRE(train::list_checkpoints(dir.file("missing")).empty());
  REQUIRE(!train::latest_checkpoint(dir.file("missing")));
  REQUIRE(!train::latest_valid_checkpoint(dir.file("missing")).path);
  BINDERY_REQUIRE_THROWS_WITH_ALL(run.save(dir.str(), -1), ValueError, "keep_last");
  BINDERY_REQUIRE_THROWS_WITH_ALL(
      train::save_checkpoint(dir.str(), 1, *run.net, *run.opt, {}, 0, nlohmann::json::array()), ValueError,
      "JSON object");
}

namespace {

/// Trains 12 steps straight, and 5 + save + load into fresh objects + 7: the same bits.
template <class Opt>
void require_bit_identical_resume() {
  constexpr int kSteps = 12, kSplit = 5;
  TempDir dir;
  Run<float, Opt> straight(8, 16);
  for (int i = 0; i < kSteps; ++i) straight.train_step();

  Run<float, Opt> first(8, 16);
  for (int i = 0; i < kSplit; ++i) first.train_step();
  const std::string path = first.save(dir.str(), 3);
  Run<float, Opt> resumed(8, 16, /*seed=*/42);  // fresh objects with other weights and streams
  resumed.sampler = Philox(7);
  resumed.load(path);
  require_same_state(first, resumed);
  while (resumed.step < kSteps) resumed.train_step();
  require_same_state(straight, resumed);

  // Without the data cursor and streams restored it would not be the same run (the test has teeth).
  Run<float, Opt> careless(8, 16, /*seed=*/42);
  std::map<std::string, Philox> ignored;
  train::load_checkpoint(path, *careless.net, *careless.opt, ignored);
  careless.step = kSplit;
  while (careless.step < kSteps) careless.train_step();
  REQUIRE(!same_bits(careless.net->fc1->parameters()[0].value(), straight.net->fc1->parameters()[0].value()));
}

}  // namespace

TEST_CASE("checkpoint: resuming continues bit-identically", "[train][checkpoint]") {
  require_bit_identical_resume<optim::AdamW<float>>();
}

TEST_CASE("checkpoint: resuming SGD with momentum continues bit-identically", "[train][checkpoint]") {
  require_bit_identical_resume<optim::Sgd<float>>();
}

// Run by the SIGKILL test below in child processes (fork + exec of this binary): trains to
// kKillSteps with a checkpoint after every step, resuming from the newest valid one. Hidden ([.]),
// and a no-op unless the parent set BINDERY_CHECKPOINT_CHILD_DIR.
// BINDERY_CHECKPOINT_CHILD_OPTIMIZER picks the optimizer: "sgd" (with momentum) or AdamW.
namespace {
template <class Opt>
void child_process(const char* dir, int64_t steps) {
  Run<float, Opt> run(kKillDim, kKillHidden);
  const train::CheckpointSearch latest = train::latest_valid_checkpoint(dir);
  REQUIRE(latest.skipped.empty());
  if (latest.path) run.load(*latest.path);
  while (run.step < steps) {
    run.train_step();
    run.save(dir, 3);
  }
}
}  // namespace

TEST_CASE("checkpoint child process", "[.][checkpoint-child]") {
  const char* dir = std::getenv("BINDERY_CHECKPOINT_CHILD_DIR");
  const char* steps = std::getenv("BINDERY_CHECKPOINT_CHILD_STEPS");
  const char* optimizer = std::getenv("BINDERY_CHECKPOINT_CHILD_OPTIMIZER");
  if (dir == nullptr || steps == nullptr) return;
  if (optimizer != nullptr && std::string(optimizer) == "sgd") {
    child_process<optim::Sgd<float>>(dir, std::atoi(steps));
  } else {
    child_process<optim::AdamW<float>>(dir, std::atoi(steps));
  }
}

namespace {

/// A child process running "checkpoint child process" on `dir`, killed (SIGKILL) and reaped at scope
/// exit if still running, so that a failing REQUIRE in the parent never leaves it behind.
class Child {
 public:
  Child(const std::string& dir, int64_t steps, const std::string& log, const std::string& optimizer) {
    // Everything execve needs is built before fork: the child calls only async-signal-safe functions.
    const std::string exe = fs::read_symlink("/proc/self/exe").string();
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "BINDERY_CHECKPOINT_CHILD_", 25) != 0) env.emplace_back(*e);
    }
    env.push_back("BINDERY_CHECKPOINT_CHILD_DIR=" + dir);
    env.push_back("BINDERY_CHECKPOINT_CHILD_STEPS=" + std::to_string(steps));
    env.push_back("BINDERY_CHECKPOINT_CHILD_OPTIMIZER=" + optimizer);
    std::vector<std::string> args = {exe, "checkpoint child process"};
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(log_fd >= 0);
    pid_ = ::fork();
    if (pid_ == 0) {  // the child: never returns into Catch2
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
      ::execve(exe.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(log_fd);
    REQUIRE(pid_ > 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  /// True once the child has exited (status then holds its wait status).
  bool exited() {
    if (pid_ <= 0) return true;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }
  /// Sends SIGKILL (if still running) and reaps; returns the wait status.
  int kill_and_wait() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Children training with `Opt` ("adamw" or "sgd" for the child) are SIGKILLed at random moments,
/// `iterations` times two: every listed checkpoint loads, and resuming finishes bit-identically.
template <class Opt>
void require_kill_resume(const std::string& optimizer, int iterations) {
  // The uninterrupted run (saving every step, as the children do) and its duration.
  TempDir timing;
  Run<float, Opt> reference(kKillDim, kKillHidden);
  auto start = std::chrono::steady_clock::now();
  while (reference.step < kKillSteps) {
    reference.train_step();
    reference.save(timing.str(), 3);
  }
  const double run_seconds = seconds_since(start), step_seconds = run_seconds / kKillSteps;
  Run<float, Opt> unsaved(kKillDim, kKillHidden);  // saving does not perturb training
  while (unsaved.step < kKillSteps) unsaved.train_step();
  require_same_state(reference, unsaved);
  // Process start-up (exec, Catch2, building the model): a child with nothing to train.
  start = std::chrono::steady_clock::now();
  {
    Child idle(timing.file("unused"), 0, timing.file("idle.log"), optimizer);
    while (!idle.exited()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const double startup_seconds = seconds_since(start);

  Philox delays(2024);
  int kills_landed = 0, kills_mid_write = 0, kills_before_first = 0, polls = 0;
  constexpr int kKillsPerIteration = 2;
  for (int iteration = 0; iteration < iterations; ++iteration) {
    TempDir root;
    const std::string dir = root.file("checkpoints");
    for (int k = 0; k < kKillsPerIteration; ++k) {
      // A random moment of what is left to train (the second child resumes where the first one died):
      // once the child's newest checkpoint reaches a random step `target` (at most two steps before
      // the end), plus a random fraction of a step (1.5 steps at most), so kills land anywhere in a
      // step, writes included. target == done: a random moment of start-up, resume and first step.
      using Clock = std::chrono::steady_clock;
      const auto newest = train::latest_checkpoint(dir);
      const int64_t done = newest ? train::verify_checkpoint(*newest).step : 0;
      const int64_t target =
          done + static_cast<int64_t>(delays.next_uniform() * double(kKillSteps - 1 - done));
      const double fraction = delays.next_uniform();
      INFO("iteration " << iteration << ", kill " << k << ": from step " << done << ", target step " << target
                        << " + " << fraction * 1.5 << " steps (step " << step_seconds << " s, start-up "
                        << startup_seconds << " s)");
      const std::string log = root.file("child-" + std::to_string(k) + ".log");
      Child child(dir, kKillSteps, log, optimizer);
      const auto spawned = Clock::now();
      auto after = [](Clock::time_point t, double seconds) {
        return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
      };
      std::optional<Clock::time_point> kill_at;
      if (target == done) kill_at = after(spawned, fraction * (startup_seconds + step_seconds));
      // Meanwhile, whatever is listed must verify: a checkpoint name never shows a partial file.
      while (!child.exited() && !(kill_at && Clock::now() >= *kill_at)) {
        REQUIRE(seconds_since(spawned) < 30.0);  // a stuck child (the guard kills it)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        const auto latest = train::latest_checkpoint(dir);
        if (!latest) continue;
        try {
          const int64_t step = train::verify_checkpoint(*latest).step;
          ++polls;
          if (!kill_at && step >= target) kill_at = after(Clock::now(), fraction * 1.5 * step_seconds);
        } catch (const IoError& e) {
          INFO(e.what());
          REQUIRE(!fs::exists(*latest));  // deleted by keep_last between listing and opening: fine
        }
      }
      const int status = child.kill_and_wait();
      INFO("child log: " << read_bytes(log));
      REQUIRE((WIFSIGNALED(status) ? WTERMSIG(status) == SIGKILL : WEXITSTATUS(status) == 0));
      if (WIFSIGNALED(status)) ++kills_landed;
      if (has_temp_file(dir)) ++kills_mid_write;
      const auto listed = train::list_checkpoints(dir);
      if (listed.empty()) ++kills_before_first;
      REQUIRE(listed.size() <= 4);  // keep_last 3, plus one if killed between the rename and the cleanup
      for (const auto& path : listed) {
        INFO("checkpoint " << path);
        Run<float, Opt> probe(kKillDim, kKillHidden);
        probe.load(path);
        REQUIRE(probe.step == train::verify_checkpoint(path).step);
      }
    }
    // Resume in this process from the newest checkpoint (or from scratch) and finish the run.
    Run<float, Opt> resumed(kKillDim, kKillHidden, /*seed=*/9);
    const train::CheckpointSearch latest = train::latest_valid_checkpoint(dir);
    REQUIRE(latest.skipped.empty());
    if (latest.path) {
      resumed.load(*latest.path);
    } else {
      resumed = Run<float, Opt>(kKillDim, kKillHidden);
    }
    while (resumed.step < kKillSteps) {
      resumed.train_step();
      resumed.save(dir, 3);
    }
    require_same_state(reference, resumed);
    REQUIRE(!has_temp_file(dir));
    REQUIRE(train::list_checkpoints(dir).size() == 3);
  }
  WARN("SIGKILL test (" << optimizer << "): " << kills_landed << " of " << iterations * kKillsPerIteration
                        << " kills landed mid-run, " << kills_mid_write
                        << " mid-write (temporary file left), " << kills_before_first
                        << " before the first checkpoint; " << polls << " concurrent verifications; run "
                        << run_seconds << " s, start-up " << startup_seconds << " s");
  REQUIRE(kills_landed >= iterations * kKillsPerIteration * 7 / 10);
}

}  // namespace

TEST_CASE("checkpoint: SIGKILL at random moments always leaves a loadable checkpoint",
          "[train][checkpoint]") {
  require_kill_resume<optim::AdamW<float>>("adamw", 5);
}

// The same with SGD's momentum buffers as the optimizer state (fewer iterations: the machinery
// under test is the same, only the optimizer's state differs).
TEST_CASE("checkpoint: SIGKILL with SGD (momentum) resumes bit-identically", "[train][checkpoint]") {
  require_kill_resume<optim::Sgd<float>>("sgd", 2);
}

TEST_CASE("checkpoint: damaged files are typed errors and latest_valid_checkpoint falls back",
          "[train][checkpoint]") {
  TempDir dir;
  Run<float> run(4, 6);
  std::vector<std::string> paths;
  for (int i = 0; i < 3; ++i) {
    run.train_step();
    paths.push_back(run.save(dir.str(), 0));
  }
  const std::string newest = paths[2], intact = read_bytes(newest);
  Run<float> target(4, 6, /*seed=*/5);
  const auto before = target.net->state_dict();
  std::vector<std::vector<float>> snapshot;
  for (const auto& [key, value] : before) snapshot.push_back(value.to_vector());
  auto require_unchanged = [&] {
    size_t i = 0;
    for (const auto& [key, value] : target.net->state_dict()) REQUIRE(value.to_vector() == snapshot[i++]);
    REQUIRE(target.step == 0);
  };
  auto require_fallback = [&](const std::string& needle) {
    const train::CheckpointSearch search = train::latest_valid_checkpoint(dir.str());
    REQUIRE(search.path == paths[1]);
    REQUIRE(search.skipped.size() == 1);
    REQUIRE(search.skipped[0].path == newest);
    INFO(search.skipped[0].reason);
    REQUIRE(search.skipped[0].reason.find(needle) != std::string::npos);
  };

  SECTION("a flipped byte in tensor data") {
    std::string bytes = intact;
    bytes[bytes.size() - 3] ^= 0x10;
    write_bytes(newest, bytes);
    BINDERY_REQUIRE_THROWS_WITH_ALL(train::verify_checkpoint(newest), FormatError, newest.c_str(), "tensor '",
                                    "CRC-32");
    BINDERY_REQUIRE_THROWS_WITH_ALL(target.load(newest), FormatError, newest.c_str(), "tensor '", "damaged");
    require_unchanged();
    require_fallback("CRC-32");
  }
  SECTION("a truncated file") {
    fs::resize_file(newest, intact.size() - 100);
    BINDERY_REQUIRE_THROWS_WITH_ALL(target.load(newest), FormatError, newest.c_str(), "truncated");
    require_unchanged();
    require_fallback("truncated");
  }
  SECTION("an edited manifest") {
    std::string bytes = intact;
    const size_t at = bytes.find("\\\"step\\\":3");  // the manifest is a JSON string in the header
    REQUIRE(at != std::string::npos);
    bytes[at + 9] = '7';
    write_bytes(newest, bytes);
    BINDERY_REQUIRE_THROWS_WITH_ALL(target.load(newest), FormatError, newest.c_str(), "manifest", "checksum");
    require_unchanged();
    require_fallback("checksum");
  }
  SECTION("an empty file, a text file, a safetensors file that is no checkpoint") {
    write_bytes(newest, "");
    BINDERY_REQUIRE_THROWS_WITH_ALL(train::verify_checkpoint(newest), FormatError, newest.c_str());
    require_fallback(newest);
    write_bytes(newest, "{\"step\": 3}\n");
    BINDERY_REQUIRE_THROWS_WITH_ALL(train::verify_checkpoint(newest), FormatError, newest.c_str());
    io::save_safetensors<float, Cpu>(newest, {{"w", Tensor<float>::ones({2})}});
    BINDERY_REQUIRE_THROWS_WITH_ALL(target.load(newest), FormatError, newest.c_str(),
                                    "not a bindery checkpoint");
    require_unchanged();
    require_fallback("not a bindery checkpoint");
  }
  SECTION("every checkpoint damaged: no path, every one reported") {
    for (const auto& path : paths) fs::resize_file(path, 20);
    const train::CheckpointSearch search = train::latest_valid_checkpoint(dir.str());
    REQUIRE(!search.path);
    REQUIRE(search.skipped.size() == 3);
    REQUIRE(search.skipped[0].path == paths[2]);
    REQUIRE(search.skipped[2].path == paths[0]);
  }
  SECTION("a newer format version is a ValueError, not damage") {
    const io::SafetensorsFile file = io::SafetensorsFile::open(newest);
    nlohmann::json manifest = nlohmann::json::parse(file.metadata().at("bindery.checkpoint"));
    manifest["version"] = 2;
    const std::string text = manifest.dump();
    char crc[9];
    std::snprintf(crc, sizeof(crc), "%08lx",
                  ::crc32(0, reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
    const auto tensors = io::load_safetensors<float, Cpu>(newest);
    std::vector<std::pair<std::string, Tensor<float>>> copies;
    for (const auto& [name, t] : tensors) copies.emplace_back(name, t.clone());
    io::save_safetensors(newest, copies, {{"bindery.checkpoint", text}, {"bindery.checkpoint.crc32", crc}});
    BINDERY_REQUIRE_THROWS_WITH_ALL(train::verify_checkpoint(newest), ValueError, newest.c_str(),
                                    "version 2");
    REQUIRE_THROWS_AS(train::latest_valid_checkpoint(dir.str()), ValueError);
  }
}

TEST_CASE("checkpoint: a model, optimizer or stream that does not fit is refused, nothing changes",
          "[train][checkpoint]") {
  TempDir dir;
  Run<float> run(8, 16);
  run.train_step();
  const std::string path = run.save(dir.str(), 3);

  Run<float> wider(8, 12);
  const std::vector<float> before = wider.net->fc1->parameters()[0].value().to_vector();
  BINDERY_REQUIRE_THROWS_WITH_ALL(wider.load(path), nn::StateDictError, path.c_str(), "fc1.weight", "(16, 8)",
                                  "(12, 8)");
  REQUIRE(wider.net->fc1->parameters()[0].value().to_vector() == before);
  REQUIRE(wider.opt->state()[0].step == 0);

  Run<float> one_group(8, 16, 1, {}, /*one_group=*/true);
  BINDERY_REQUIRE_THROWS_WITH_ALL(one_group.load(path), nn::StateDictError, path.c_str(), "groups of (2, 5)",
                                  "(7)");

  Run<float> other_beta(8, 16, 1, optim::AdamWOptions{.beta2 = 0.99});
  BINDERY_REQUIRE_THROWS_WITH_ALL(other_beta.load(path), ValueError, path.c_str(), "beta2", "0.999", "0.99");

  Run<float> reordered(8, 16);  // same shapes in each group, but two parameters swapped
  std::swap(reordered.opt->groups()[1].params[3], reordered.opt->groups()[1].params[4]);
  BINDERY_REQUIRE_THROWS_WITH_ALL(reordered.load(path), nn::StateDictError, path.c_str(),
                                  "optimizer parameter 5", "norm.weight", "norm.bias");

  Run<float> same(8, 16);
  std::map<std::string, Philox> wanted = {{"teacher", Philox(1)}};
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::load_checkpoint(path, *same.net, *same.opt, wanted),
                                  nn::StateDictError, path.c_str(), "'teacher'");
  REQUIRE(wanted.size() == 1);

  Run<double> wrong_type(8, 16);
  std::map<std::string, Philox> rngs;
  BINDERY_REQUIRE_THROWS_WITH_ALL(train::load_checkpoint(path, *wrong_type.net, *wrong_type.opt, rngs),
                                  ValueError, path.c_str(), "F32", "F64");
}

TEST_CASE("checkpoint: an optimizer of another type is a ValueError, nothing changes",
          "[train][checkpoint]") {
  TempDir dir;
  Run<float, optim::Sgd<float>> sgd(8, 16);
  sgd.train_step();
  const std::string sgd_path = sgd.save(dir.str(), 0);
  const nlohmann::json manifest =
      nlohmann::json::parse(io::SafetensorsFile::open(sgd_path).metadata().at("bindery.checkpoint"));
  REQUIRE(manifest.at("optimizer").at("type") == "SGD");
  REQUIRE(manifest.at("optimizer").at("momentum") == 0.9);
  REQUIRE(manifest.at("tensors").contains("optim.0.momentum_buffer"));

  Run<float> adamw(8, 16, /*seed=*/3);
  const std::vector<float> before = adamw.net->fc1->parameters()[0].value().to_vector();
  BINDERY_REQUIRE_THROWS_WITH_ALL(adamw.load(sgd_path), ValueError, sgd_path.c_str(), "SGD", "not AdamW");
  REQUIRE(adamw.net->fc1->parameters()[0].value().to_vector() == before);
  REQUIRE(adamw.opt->state()[0].step == 0);

  adamw.train_step();
  const std::string adamw_path = adamw.save(dir.str() + "/adamw", 0);
  Run<float, optim::Sgd<float>> target(8, 16, /*seed=*/3);
  BINDERY_REQUIRE_THROWS_WITH_ALL(target.load(adamw_path), ValueError, adamw_path.c_str(), "AdamW",
                                  "not SGD");
  REQUIRE(target.opt->state_dict().tensors.empty());
  Run<float, optim::Sgd<float>> nesterov(8, 16, 1, {.momentum = 0.9, .nesterov = true});
  BINDERY_REQUIRE_THROWS_WITH_ALL(nesterov.load(sgd_path), ValueError, sgd_path.c_str(), "nesterov");
}

TEST_CASE("checkpoint: AdamW checkpoints keep the version-1 layout", "[train][checkpoint]") {
  // The layout every existing AdamW checkpoint has (written before optimizers shared an interface):
  // readers of those files, and those files read by this code, depend on these names.
  TempDir dir;
  Run<float> run(4, 6);
  run.train_step();
  const std::string path = run.save(dir.str(), 0);
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  const nlohmann::json manifest = nlohmann::json::parse(file.metadata().at("bindery.checkpoint"));
  const nlohmann::json& o = manifest.at("optimizer");
  std::vector<std::string> keys;
  for (const auto& [key, value] : o.items()) keys.push_back(key);
  REQUIRE(keys == std::vector<std::string>{"beta1", "beta2", "eps", "groups", "names", "steps", "type"});
  REQUIRE(o.at("type") == "AdamW");
  REQUIRE(o.at("groups")[0] ==
          nlohmann::json{
              {"initial_lr", 1e-2}, {"lr", run.opt->groups()[0].lr}, {"params", 2}, {"weight_decay", 0.05}});
  REQUIRE(o.at("steps") == nlohmann::json({1, 1, 0, 1, 1, 1, 1}));  // 2: "unused"
  REQUIRE(o.at("names")[2] == "unused");
  REQUIRE(file.contains("optim.0.exp_avg"));
  REQUIRE(file.contains("optim.6.exp_avg_sq"));
  REQUIRE(!file.contains("optim.2.exp_avg"));
}

TEST_CASE("checkpoint: an AdamW checkpoint written before the Optimizer interface still loads",
          "[train][checkpoint]") {
  // fixtures/adamw_v1_step2.safetensors: Run<float>(4, 6) of this file after two train_step()s,
  // saved by commit d01d928 (AdamW-only checkpoints), on the CPU.
  const std::string path = std::string(BINDERY_TEST_DATA) + "/train/fixtures/adamw_v1_step2.safetensors";
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  Run<float> run(4, 6, /*seed=*/5);
  const train::CheckpointInfo info = run.load(path);
  REQUIRE(info.step == 2);
  REQUIRE(run.cursor == 2 * Run<float>::kBatch);
  for (const auto& [key, value] : run.net->state_dict()) {
    INFO(key);
    REQUIRE(same_bits(value, file.read<float, Cpu>("model." + key)));
  }
  const auto& state = run.opt->state();
  REQUIRE(state.size() == 7);
  for (size_t k = 0; k < 7; ++k) {
    INFO("parameter " << k);
    if (k == 2) continue;  // "unused": never stepped (checked below)
    REQUIRE(state[k].step == 2);
    REQUIRE(same_bits(state[k].exp_avg, file.read<float, Cpu>("optim." + std::to_string(k) + ".exp_avg")));
    REQUIRE(
        same_bits(state[k].exp_avg_sq, file.read<float, Cpu>("optim." + std::to_string(k) + ".exp_avg_sq")));
  }
  REQUIRE((state[2].step == 0 && !state[2].exp_avg.defined()));
  const nlohmann::json old = nlohmann::json::parse(file.metadata().at("bindery.checkpoint"));
  for (size_t g = 0; g < 2; ++g) {
    REQUIRE(run.opt->groups()[g].lr == old.at("optimizer").at("groups")[g].at("lr").get<double>());
    REQUIRE(run.opt->groups()[g].initial_lr ==
            old.at("optimizer").at("groups")[g].at("initial_lr").get<double>());
  }
  // It trains on, and saves in the same layout.
  run.train_step();
  TempDir dir;
  const nlohmann::json saved = nlohmann::json::parse(
      io::SafetensorsFile::open(run.save(dir.str(), 0)).metadata().at("bindery.checkpoint"));
  REQUIRE(saved.at("optimizer").at("names") == old.at("optimizer").at("names"));
  REQUIRE(saved.at("tensors").size() == old.at("tensors").size());
}
