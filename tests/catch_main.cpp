// The one Catch2 main shared by every test binary.
//
// Threads: every test binary runs with BINDERY_TEST_THREADS threads (default 1: CTest runs the
// cases of several binaries side by side on a small machine, and OpenMP teams of 2 on 2 busy cores
// only spin). CTest also runs each whole binary once more with BINDERY_TEST_THREADS=2, so every
// parallel code path is exercised (tests/CMakeLists.txt: the "threads:" entries).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <bindery/backend/cpu.hpp>

#include <cstdlib>

int main(int argc, char* argv[]) {
  const char* threads = std::getenv("BINDERY_TEST_THREADS");
  bindery::Cpu::set_num_threads(threads ? std::max(1, std::atoi(threads)) : 1);
  return Catch::Session().run(argc, argv);
}
