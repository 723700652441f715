// tests/cuda/test_bodies_prelude.hpp — included first by the .cu files that rerun the CPU test
// files' templated bodies on Cuda.
//
// Those .cu files #include whole tests/<layer>/test_*.cpp files, each inside its own namespace (so
// the files' file-local helpers cannot collide). A header a test file includes must therefore
// already be included here, at global scope, where its include guard then turns the nested
// #include into a no-op: test_util.hpp (bindery, Catch2, bindery::Cuda under nvcc) and the standard
// headers below, a superset of what the test files use. A test file that includes a standard header
// missing here fails to compile in the CUDA build: add the header to this list.
//
// Only the TEMPLATE_LIST_TEST_CASE bodies are wanted here (they run on Cpu and Cuda); the files'
// plain TEST_CASEs are Cpu-only and already run in the CPU test binaries. TEST_CASE is therefore
// redefined below into a function template that is never instantiated: its body is still parsed
// (it must stay valid C++), but nvcc's host compiler generates no code for it, which halves the
// build time of these translation units, and the CUDA binary lists no Cpu-only duplicates.
#pragma once

#include "test_util.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <numbers>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#undef TEST_CASE
#define TEST_CASE(...)                \
  template <class BinderyCpuOnlyTest> \
  [[maybe_unused]] static void INTERNAL_CATCH_UNIQUE_NAME(bindery_cpu_only_test_)()
