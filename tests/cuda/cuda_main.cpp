// tests/cuda/cuda_main.cpp — the Catch2 main of the CUDA test binaries (compiled by g++).
//
// Catch2 v2 has no "skipped" result, so a CUDA test binary on a machine without a usable GPU runs
// nothing and exits with kSkipCode; CTest maps that code to SKIPPED (SKIP_RETURN_CODE in
// tests/cuda/CMakeLists.txt), so no CUDA case ever reports "passed" without having run. Listing
// invocations (test discovery at build time: --list-test-names-only) run normally, without a GPU.
// Each binary says whether it needs a device: test_cuda does, test_cuda_host (the kernels' math run
// on the host) does not. Threads: as tests/catch_main.cpp (BINDERY_TEST_THREADS, default 1).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <bindery/backend/cpu.hpp>

#include <cstdlib>
#include <iostream>
#include <string_view>

namespace bindery::testing {
// Defined by one .cu file of each binary (nvcc), where bindery::Cuda is visible.
bool cuda_tests_need_device();
bool cuda_device_available();
}  // namespace bindery::testing

namespace {

constexpr int kSkipCode = 77;

/// True for the invocations that only list or describe tests (they need no device).
bool only_lists(int argc, char* argv[]) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--list") || arg == "-l" || arg == "-t" || arg == "-h" || arg == "-?" ||
        arg == "--help") {
      return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (bindery::testing::cuda_tests_need_device() && !only_lists(argc, argv) &&
      !bindery::testing::cuda_device_available()) {
    std::cout << "SKIPPED: no usable CUDA device (bindery::Cuda::is_available() is false); exit code "
              << kSkipCode << " marks these CUDA tests as skipped, not passed\n";
    return kSkipCode;
  }
  const char* threads = std::getenv("BINDERY_TEST_THREADS");
  bindery::Cpu::set_num_threads(threads ? std::max(1, std::atoi(threads)) : 1);
  return Catch::Session().run(argc, argv);
}
