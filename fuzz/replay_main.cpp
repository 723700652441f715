// fuzz/replay_main.cpp — runs fuzz targets over saved inputs without libFuzzer (any compiler):
//
//   fuzz_replay --list
//   fuzz_replay <target> <file or folder>...
//
// Folders are read recursively in name order; a path that does not exist counts as empty (a target
// may have no regression inputs yet). Each input runs once; the run fails (exit 1) when an input
// throws anything but a bindery::Error or takes longer than BINDERY_FUZZ_MAX_SECONDS (default 10 s,
// sanitizer builds included). A sanitizer report or a signal ends the process, after the line that
// names the input.
#include "fuzz_target.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <iterator>
#include <vector>

namespace {

std::vector<std::filesystem::path> inputs_of(const std::vector<std::string>& paths) {
  std::vector<std::filesystem::path> files;
  for (const std::string& p : paths) {
    const std::filesystem::path path(p);
    if (std::filesystem::is_directory(path)) {
      std::vector<std::filesystem::path> found;
      for (const auto& e : std::filesystem::recursive_directory_iterator(path))
        if (e.is_regular_file()) found.push_back(e.path());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (std::filesystem::exists(path)) {
      files.push_back(path);
    }
  }
  return files;
}

std::vector<uint8_t> read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  const auto& targets = bindery::fuzz::registry();
  if (argc >= 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, fn] : targets) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <target> <file or folder>...   |   %s --list\n", argv[0], argv[0]);
    return 2;
  }
  const auto target = targets.find(argv[1]);
  if (target == targets.end()) {
    std::fprintf(stderr, "fuzz_replay: no target '%s' in this build (--list names them)\n", argv[1]);
    return 2;
  }
  const char* limit_env = std::getenv("BINDERY_FUZZ_MAX_SECONDS");
  const double limit_s = limit_env != nullptr ? std::atof(limit_env) : 10.0;
  const auto files = inputs_of(std::vector<std::string>(argv + 2, argv + argc));
  int failures = 0;
  double slowest = 0.0;
  std::string slowest_name;
  for (const auto& file : files) {
    const std::vector<uint8_t> bytes = read_all(file);
    std::fprintf(stderr, "%s: %s (%zu bytes)\n", argv[1], file.c_str(), bytes.size());
    const auto start = std::chrono::steady_clock::now();
    try {
      target->second(bytes.data(), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FINDING %s: %s: uncaught exception (not a bindery::Error): %s\n", argv[1],
                   file.c_str(), e.what());
      ++failures;
    } catch (...) {
      std::fprintf(stderr, "FINDING %s: %s: uncaught non-std exception\n", argv[1], file.c_str());
      ++failures;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > slowest) slowest = seconds, slowest_name = file.string();
    if (seconds > limit_s) {
      std::fprintf(stderr, "FINDING %s: %s: took %.1f s (limit %.1f s, BINDERY_FUZZ_MAX_SECONDS)\n", argv[1],
                   file.c_str(), seconds, limit_s);
      ++failures;
    }
  }
  std::printf("%s: %zu inputs, %d findings, slowest %.3f s (%s)\n", argv[1], files.size(), failures, slowest,
              slowest_name.c_str());
  return failures == 0 ? 0 : 1;
}
