// bindery/dist/init.hpp — the process group this program was launched into.
//
//   auto group = dist::init();   // MpiProcessGroup under mpirun (when built with bindery::mpi),
//                                // else a SingleProcessGroup: the same program runs either way
//
// The engine is chosen by, in order:
//   1. BINDERY_DIST=single|mpi in the environment (mpi without bindery::mpi is an error);
//   2. a launcher's environment: OMPI_COMM_WORLD_SIZE (Open MPI's mpirun), PMI_SIZE or PMIX_RANK
//      (other MPI launchers) -> mpi;
//   3. otherwise single.
// NCCL groups (Cuda tensors) are made explicitly from an MPI group: dist/nccl.hpp.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "bindery/dist/single.hpp"
#if defined(BINDERY_HAS_MPI)
#include "bindery/dist/mpi.hpp"
#endif

namespace bindery::dist {

/// True when this binary was built with the MPI engine (CMake target bindery::mpi).
constexpr bool has_mpi() {
#if defined(BINDERY_HAS_MPI)
  return true;
#else
  return false;
#endif
}

/// The engine the environment asks for: "single" or "mpi" (see the file comment).
inline std::string engine_from_environment() {
  if (const char* e = std::getenv("BINDERY_DIST"); e && *e) {
    const std::string engine = e;
    BINDERY_CHECK(engine == "single" || engine == "mpi", ValueError, "BINDERY_DIST=\"", engine,
                  "\" must be \"single\" or \"mpi\"");
    return engine;
  }
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (const char* v = std::getenv(var); v && *v) return "mpi";
  return "single";
}

/// The group of this process (see the file comment).
inline std::shared_ptr<ProcessGroup> init(GroupOptions options = options_from_environment()) {
  const std::string engine = engine_from_environment();
  if (engine == "mpi") {
#if defined(BINDERY_HAS_MPI)
    return std::make_shared<MpiProcessGroup>(options);
#else
    const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
    BINDERY_CHECK(size == nullptr || std::string(size) == "1", DistError,
                  "dist::init: launched by mpirun with ", size ? size : "?",
                  " processes, but this program was built without MPI (link bindery::mpi; install "
                  "libopenmpi-dev and reconfigure). Each process would train alone.");
    BINDERY_CHECK(std::getenv("BINDERY_DIST") == nullptr, DistError,
                  "dist::init: BINDERY_DIST=mpi, but this program was built without MPI (link bindery::mpi)");
#endif
  }
  return std::make_shared<SingleProcessGroup>(options);
}

}  // namespace bindery::dist
