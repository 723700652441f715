// bindery/dist/all.hpp — distributed training without an engine dependency: the group interface,
// the single-process group, Var collectives, data parallelism, and dist::init (which adds the MPI
// group when BINDERY_HAS_MPI is defined by the bindery::mpi target). dist/nccl.hpp is separate.
#pragma once

#include "bindery/dist/data_parallel.hpp"
#include "bindery/dist/functional.hpp"
#include "bindery/dist/init.hpp"
#include "bindery/dist/process_group.hpp"
#include "bindery/dist/single.hpp"
