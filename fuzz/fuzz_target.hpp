// fuzz/fuzz_target.hpp — what every fuzz target shares: the entry-point macro, the error policy and a
// private scratch file for the readers that take a path.
//
// A target is written once:
//
//   BINDERY_FUZZ_TARGET(npy) { bindery::fuzz::with_file(data, size, ".npy", [](const std::string& p) {...});
//   }
//
// and built two ways (fuzz/CMakeLists.txt):
//   - libFuzzer (clang, BINDERY_FUZZ=ON): one executable per target, the macro defines
//     LLVMFuzzerTestOneInput;
//   - replay (BINDERY_FUZZ_REPLAY defined, any compiler): every target in one executable,
//     fuzz_replay <target> <files or folders...> (fuzz/replay_main.cpp), the macro registers the
//     body under its name. CTest runs it over fuzz/corpus/<target> and fuzz/regressions/<target>
//     under ASan + UBSan.
//
// The policy: a reader may refuse an input only with a bindery::Error. guarded() swallows those and
// nothing else, so any other exception (std::bad_alloc, nlohmann's, std::out_of_range), a signal or a
// sanitizer report ends the run as a finding.
#pragma once

#include <bindery/core/error.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <string_view>

namespace bindery::fuzz {

using TargetFn = int (*)(const uint8_t*, size_t);

/// Every target linked into this executable, by name (replay builds only).
inline std::map<std::string, TargetFn>& registry() {
  static std::map<std::string, TargetFn> targets;
  return targets;
}

inline bool register_target(const char* name, TargetFn fn) {
  registry()[name] = fn;
  return true;
}

/// Runs `body`; a bindery::Error (the documented way to refuse an input) is swallowed, anything
/// else propagates to the fuzzer or the replay driver as a finding.
template <class Body>
void guarded(Body&& body) {
  try {
    body();
  } catch (const ::bindery::Error&) {
  }
}

/// A reproducible failure of a round-trip check: not a bindery::Error, so it is a finding.
[[noreturn]] inline void round_trip_failed(const char* target, const char* what) {
  std::fprintf(stderr, "bindery fuzz %s: round trip changed the value: %s\n", target, what);
  std::abort();
}

/// This process's scratch folder (removed at exit): readers that take a path read the input from a
/// file here. One folder per process, so parallel fuzzing jobs never share a file.
inline const std::filesystem::path& scratch_dir() {
  struct Folder {
    std::filesystem::path path;
    Folder() {
      const char* tmp = std::getenv("TMPDIR");
      path = std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
             ("bindery_fuzz_" + std::to_string(::getpid()));
      std::filesystem::create_directories(path);
    }
    ~Folder() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Folder folder;
  return folder.path;
}

/// Writes the input to "<scratch>/input<suffix>" and calls body(path) under guarded().
template <class Body>
void with_file(const uint8_t* data, size_t size, std::string_view suffix, Body&& body) {
  const std::string path = (scratch_dir() / ("input" + std::string(suffix))).string();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out.good()) {
      std::fprintf(stderr, "bindery fuzz: cannot write the scratch file %s\n", path.c_str());
      std::abort();
    }
  }
  guarded([&] { body(path); });
}

inline std::span<const uint8_t> bytes_of(const uint8_t* data, size_t size) {
  return {data, size};
}

}  // namespace bindery::fuzz

#if defined(BINDERY_FUZZ_REPLAY)
#define BINDERY_FUZZ_TARGET(name)                                       \
  static int bindery_fuzz_##name(const uint8_t* data, size_t size);     \
  [[maybe_unused]] static const bool bindery_fuzz_##name##_registered = \
      ::bindery::fuzz::register_target(#name, &bindery_fuzz_##name);    \
  static int bindery_fuzz_##name(const uint8_t* data, size_t size)
#else
#define BINDERY_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#endif
