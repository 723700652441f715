// bindery/dist/nccl.hpp — a ProcessGroup on NCCL, for Cuda tensors: one GPU per rank. Needs nvcc,
// <nccl.h> and MPI (the bootstrap): include it from a .cu file and link the CMake target
// bindery::nccl (bindery::cuda + bindery::mpi + the toolkit's libnccl; defines BINDERY_HAS_NCCL).
//
//   mpirun -np 8 ./train                      # one process per GPU; 8 GPUs on one machine
//   mpirun -np 16 --hostfile hosts ./train    # several: "host1 slots=8" lines
//
//   auto mpi = std::make_shared<dist::MpiProcessGroup>();   // the bootstrap (MPI_Init)
//   dist::NcclProcessGroup nccl(*mpi);                      // before the first Cuda tensor
//   nccl.all_reduce(grad, dist::ReduceOp::kAverage).wait(); // grad: a Tensor<float, Cuda>
//
//   // or, for DataParallel (which holds the group by shared_ptr):
//   auto group = std::make_shared<dist::NcclProcessGroup>(*mpi);
//   dist::DataParallel<float, Cuda> dp(group, model);
//
// The design is PyTorch's ProcessGroupNCCL:
// - Bootstrap. Rank 0 calls ncclGetUniqueId and the MPI group broadcasts the id (128 bytes); every
//   rank then calls ncclCommInitRankConfig with blocking = 0 (NCCL >= 2.14; ncclCommInitRank
//   before), so initialization and every later call can be waited on with a deadline and aborted.
//   The MPI group must outlive this one; host memory (the interface's bookkeeping: all_gather of
//   row counts, all_gather_values, broadcast_string, host tensors) travels over it.
// - Device. NcclOptions::device, or the local rank modulo the number of visible devices: the local
//   rank is OMPI_COMM_WORLD_LOCAL_RANK (mpirun), else this rank's index among the ranks on the same
//   host (host names the MPI group exchanged). The constructor calls cudaSetDevice, so create the
//   group before the first Cuda tensor: bindery's Cuda backend binds to the device current at its
//   first use (DistError when it already runs on another device).
// - Streams. Collectives run on the group's own stream (cudaStreamNonBlocking). bindery's kernels
//   all run on Cuda::stream() (backend/cuda.hpp; a blocking stream, not the legacy default stream),
//   so before each launch the group records an event there and makes its stream wait for it: the
//   collective reads the data every kernel queued before the call produced. Each Work records an
//   event on the group's stream after its launch; test() queries it (cudaEventQuery) together with
//   ncclCommGetAsyncError, wait() blocks the host until it completes, so Cuda work queued after
//   wait() returns sees the result. Buffers must stay alive and untouched until then.
// - Send and recv. NCCL's ncclSend/ncclRecv block the GPU until the peer's matching call runs, so
//   two ranks that each send and then receive would deadlock. The group therefore queues them on
//   the host and launches all queued ones in one ncclGroupStart/ncclGroupEnd at the first wait() or
//   test() of one of them, or at the next collective: `auto s = pg.send(x, peer); auto r = pg.recv(y, peer);
//   s.wait(); r.wait();` works in any order on both sides, as with MPI_Isend/MPI_Irecv. NCCL has no
//   tags: messages between two ranks match in issue order, and `tag` is ignored.
// - all_gather. Equal counts: ncclAllGather. Unequal counts: one ncclBroadcast per rank (root r
//   sends its block into offset sum(counts[0..r)) of every rank's output), fused in one
//   ncclGroupStart/ncclGroupEnd: no padding, no extra memory, no compaction pass. It costs one
//   broadcast's latency per rank, so for large groups prefer equal counts (pad on the caller side).
// - barrier() is an all-reduce of one int32 on the device; its Work completes when every rank
//   reached it. ReduceOp::kAverage is ncclAvg (floating types only, as the MPI engine).
//
// Determinism. NCCL does not document a guarantee, but its maintainers state that every rank
// receives the same bits at the same offset (NVIDIA/nccl issues 434, 855, 1497): ring and tree
// reduce each element once and forward the finished value unchanged, and NVLink SHARP (NVLS)
// delivers one switch-computed result to all ranks. So data-parallel replicas stay identical, as
// process_group.hpp asks (tests/cuda/test_dist_nccl.cu checks the bits across ranks). The result is
// NOT reproducible from run to run or between sizes: NCCL picks the algorithm and protocol by
// message size and topology, and NVLS reductions may differ between two calls on the same data.
// For reproducible runs pin them (NCCL_ALGO=Ring NCCL_PROTO=Simple NCCL_NVLS_ENABLE=0). ncclAvg of
// floats may be computed as a sum of inputs pre-multiplied by 1/size: it can differ in the last
// bit from sum / size (the MPI engine's), still identically on every rank.
//
// Failure. wait() polls with the group's deadline (GroupOptions::timeout, BINDERY_DIST_TIMEOUT) and
// checks every 250 ms that the peers on this host are alive (the MPI group's process ids); on an
// expired deadline, a dead peer, a NCCL asynchronous error (ncclCommGetAsyncError) or a CUDA error,
// the group calls ncclCommAbort, is marked failed, and throws DistError naming this rank, the
// operation and the reason (ncclGetErrorString and ncclGetLastError). ncclCommAbort returns once the
// communicator's queued kernels have exited (they see its abort flag), so one still queued behind
// Cuda work on bindery's stream holds the abort until that work is done. Every later call throws at
// once. NCCL's host-side work (initialization, the connections it opens while issuing the first
// collectives, finalization) has its own deadline, NcclOptions::setup_timeout (default: timeout).
// The destructor of a healthy group calls ncclCommFinalize (waiting, with that deadline, for the
// communicator to quiesce; NCCL >= 2.14) then ncclCommDestroy; a failed group blocks on nothing.
// Every CUDA and NCCL return code is checked (BackendError from CUDA setup calls, else DistError),
// except in teardown, which cannot throw: ncclCommDestroy's is printed, ncclCommAbort's and the
// CUDA frees' are ignored.
//
// Environment. NCCL_DEBUG=INFO (or WARN) prints NCCL's choices and errors, NCCL_DEBUG_SUBSYS=INIT,COLL
// narrows it; NCCL_SOCKET_IFNAME=eth0 picks the bootstrap interface between hosts; NCCL_IB_DISABLE=1
// forces TCP; NCCL_P2P_DISABLE=1 / NCCL_SHM_DISABLE=1 change intra-node transports;
// CUDA_VISIBLE_DEVICES limits the devices the local rank is counted over. Two ranks on one GPU are
// refused by NCCL ("Duplicate GPU detected").
//
// Tested by tests/cuda/test_dist_nccl.cu: compiled in CI (which has no GPU: its cases report
// SKIPPED), run by scripts/gpu-check.sh under mpirun -np 1, and -np 2 where the machine has two GPUs
// (values and bits across ranks, every collective, the timeout path, a DataParallel step). Not
// tested: several hosts (network transports), dead-peer detection, NCCL < 2.14 (the blocking
// fallback, no deadline during init and destruction).
#pragma once

#include "bindery/config.hpp"

#if !BINDERY_COMPILING_CUDA
#error \
    "bindery/dist/nccl.hpp needs nvcc: include it from a .cu file and link bindery::nccl (CUDA, MPI and NCCL)."
#endif

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bindery/cuda.hpp"
#include "bindery/dist/mpi.hpp"
#include "bindery/dist/process_group.hpp"

#if !defined(NCCL_VERSION_CODE) || !defined(NCCL_VERSION) || NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "bindery/dist/nccl.hpp needs NCCL 2.10 or newer (ncclAvg, ncclBfloat16, ncclSend/ncclRecv)"
#endif
// Non-blocking communicators (ncclConfig_t blocking = 0, ncclCommInitRankConfig) and
// ncclCommFinalize came with NCCL 2.14; ncclGetLastError with 2.13.
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
#define BINDERY_NCCL_NONBLOCKING 1
#else
#define BINDERY_NCCL_NONBLOCKING 0
#endif
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0)
#define BINDERY_NCCL_LAST_ERROR 1
#else
#define BINDERY_NCCL_LAST_ERROR 0
#endif

namespace bindery::dist {

/// Options of an NcclProcessGroup: the deadline (GroupOptions) and the device.
struct NcclOptions : GroupOptions {
  /// The CUDA device of this rank; -1: the local rank modulo the number of visible devices.
  int device = -1;
  /// The deadline of NCCL's host-side work: ncclCommInitRankConfig, the connections NCCL opens
  /// while it issues a collective (its state is ncclInProgress meanwhile; the first collectives
  /// between two ranks connect them), and ncclCommFinalize. 0: `timeout`, the deadline of wait().
  std::chrono::milliseconds setup_timeout{0};
};

namespace detail {

/// NCCL's type of `t`; ncclNumTypes when NCCL has none (a type added to DType later).
inline ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kFloat32:
      return ncclFloat32;
    case DType::kFloat64:
      return ncclFloat64;
    case DType::kInt64:
      return ncclInt64;
    case DType::kUInt64:
      return ncclUint64;
    case DType::kInt32:
      return ncclInt32;
    case DType::kUInt8:
      return ncclUint8;
    case DType::kBFloat16:
      return ncclBfloat16;
    case DType::kFloat16:
      return ncclFloat16;
    default:
      return ncclNumTypes;
  }
}

inline ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAverage:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  return ncclSum;
}

/// An integer environment variable (>= 0), or -1 when unset or malformed.
inline int env_index(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end && *end == '\0' && n >= 0 && n < (1 << 20) ? static_cast<int>(n) : -1;
}

}  // namespace detail

class NcclProcessGroup final : public ProcessGroup {
 public:
  /// A communicator over the ranks of `mpi`, with its deadline; the device as NcclOptions' default.
  explicit NcclProcessGroup(MpiProcessGroup& mpi) : NcclProcessGroup(mpi, options_of(mpi)) {}
  /// Collective over the ranks of `mpi` (every rank constructs it at the same point). `mpi` must
  /// outlive this group.
  NcclProcessGroup(MpiProcessGroup& mpi, NcclOptions options)
      : mpi_(mpi), options_(options), rank_(mpi.rank()), size_(mpi.size()) {
    BINDERY_CHECK(!mpi.failed(), DistError, where("init"), ": the bootstrap MPI group failed earlier");
    // Every rank sets up its device first, and one rank's failure reaches all: no rank is left
    // waiting in NCCL's initialization for a rank that already gave up.
    std::exception_ptr error;
    try {
      set_up_device();
    } catch (...) {
      error = std::current_exception();
    }
    try {
      const int32_t ready = mpi_.all_reduce_value<int32_t>(error ? 0 : 1, ReduceOp::kMin);
      if (error) std::rethrow_exception(error);
      BINDERY_CHECK(ready == 1, DistError, where("init"),
                    " failed: another rank could not set up its CUDA device (its own message says why)");
      init_communicator();
    } catch (...) {
      release();
      throw;
    }
  }
  NcclProcessGroup(const NcclProcessGroup&) = delete;
  NcclProcessGroup& operator=(const NcclProcessGroup&) = delete;
  ~NcclProcessGroup() override {
    if (!*failed_ && comm_ != nullptr) {
      try {
        flush_p2p();  // a queued send a peer waits for
        finalize();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bindery::dist: destroying the NCCL group: %s\n", e.what());
      }
    }
    release();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* engine() const override { return "nccl"; }
  /// Device memory through NCCL; host memory through the bootstrap MPI group.
  bool supports(Memory) const override { return true; }
  const GroupOptions& options() const override { return options_; }
  /// The CUDA device of this rank, the communicator and the stream the collectives run on.
  int device() const { return device_; }
  ncclComm_t comm() const { return comm_; }
  cudaStream_t stream() const { return stream_; }
  bool failed() const { return *failed_; }
  MpiProcessGroup& bootstrap() { return mpi_; }

  Work all_reduce_raw(void* data, int64_t count, DType dtype, ReduceOp op, Memory memory) override {
    check_alive("all_reduce");
    if (memory == Memory::kHost) return mpi_.all_reduce_raw(data, count, dtype, op, memory);
    begin("all_reduce", count, dtype);
    BINDERY_CHECK(op != ReduceOp::kAverage || dtype_is_floating(dtype), DistError, where("all_reduce"),
                  ": average of ", dtype_name(dtype), " values (use sum)");
    if (count == 0) return {};
    return launch("all_reduce", -1, [&] {
      return ncclAllReduce(data, data, static_cast<size_t>(count), detail::nccl_type(dtype),
                           detail::nccl_op(op), comm_, stream_);
    });
  }

  Work all_gather_raw(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                      Memory memory) override {
    check_alive("all_gather");
    if (memory == Memory::kHost) return mpi_.all_gather_raw(send, recv, counts, dtype, memory);
    BINDERY_CHECK(static_cast<int>(counts.size()) == size_, DistError, where("all_gather"), ": ",
                  counts.size(), " counts for ", size_, " ranks");
    bool equal = true;
    int64_t total = 0;
    for (int64_t c : counts) {
      BINDERY_CHECK(c >= 0, DistError, where("all_gather"), ": negative count ", c);
      equal = equal && c == counts[0];
      total += c;
    }
    begin("all_gather", counts[static_cast<size_t>(rank_)], dtype);
    if (total == 0) return {};
    const ncclDataType_t type = detail::nccl_type(dtype);
    if (equal) {
      return launch("all_gather", -1, [&] {
        return ncclAllGather(send, recv, static_cast<size_t>(counts[0]), type, comm_, stream_);
      });
    }
    // Unequal counts: rank r broadcasts its block into its offset of every rank's output.
    const size_t bytes = dtype_size(dtype);
    return launch("all_gather", -1, [&] {
      ncclResult_t first = ncclGroupStart();
      if (first != ncclSuccess) return first;
      int64_t at = 0;
      for (int r = 0; r < size_; ++r) {
        const int64_t c = counts[static_cast<size_t>(r)];
        if (c == 0) continue;
        void* block = static_cast<char*>(recv) + static_cast<size_t>(at) * bytes;
        const ncclResult_t rc =
            ncclBroadcast(r == rank_ ? send : block, block, static_cast<size_t>(c), type, r, comm_, stream_);
        if (first == ncclSuccess) first = rc;
        at += c;
      }
      const ncclResult_t end = ncclGroupEnd();  // always closes the group, even after an error
      return first != ncclSuccess ? first : end;
    });
  }

  Work reduce_scatter_raw(const void* send, void* recv, int64_t count, DType dtype, ReduceOp op,
                          Memory memory) override {
    check_alive("reduce_scatter");
    if (memory == Memory::kHost) return mpi_.reduce_scatter_raw(send, recv, count, dtype, op, memory);
    begin("reduce_scatter", count, dtype);
    BINDERY_CHECK(op != ReduceOp::kAverage || dtype_is_floating(dtype), DistError, where("reduce_scatter"),
                  ": average of ", dtype_name(dtype), " values (use sum)");
    if (count == 0) return {};
    return launch("reduce_scatter", -1, [&] {
      return ncclReduceScatter(send, recv, static_cast<size_t>(count), detail::nccl_type(dtype),
                               detail::nccl_op(op), comm_, stream_);
    });
  }

  Work broadcast_raw(void* data, int64_t count, DType dtype, int root, Memory memory) override {
    check_alive("broadcast");
    if (memory == Memory::kHost) return mpi_.broadcast_raw(data, count, dtype, root, memory);
    begin("broadcast", count, dtype);
    check_peer("broadcast", root, true);
    if (count == 0) return {};
    return launch("broadcast", root == rank_ ? -1 : root, [&] {
      return ncclBroadcast(data, data, static_cast<size_t>(count), detail::nccl_type(dtype), root, comm_,
                           stream_);
    });
  }

  Work barrier() override {
    check_alive("barrier");
    return launch("barrier", -1,
                  [&] { return ncclAllReduce(scratch_, scratch_, 1, ncclInt32, ncclSum, comm_, stream_); });
  }

  /// Queued until a wait() or test() of a queued one, or the next collective (see the file comment);
  /// NCCL has no tags: `tag` is ignored (messages between two ranks match in issue order).
  Work send_raw(const void* data, int64_t count, DType dtype, int dst, int tag, Memory memory) override {
    check_alive("send");
    if (memory == Memory::kHost) return mpi_.send_raw(data, count, dtype, dst, tag, memory);
    begin("send", count, dtype);
    check_peer("send", dst, false);
    return queue_p2p({true, const_cast<void*>(data), count, dtype, dst}, "send");
  }
  Work recv_raw(void* data, int64_t count, DType dtype, int src, int tag, Memory memory) override {
    check_alive("recv");
    if (memory == Memory::kHost) return mpi_.recv_raw(data, count, dtype, src, tag, memory);
    begin("recv", count, dtype);
    check_peer("recv", src, false);
    return queue_p2p({false, data, count, dtype, src}, "recv");
  }

  /// Lets MPI progress the host collectives (NCCL's run on the GPU by themselves). Queued sends and
  /// receives stay queued: launching them here would split batches differently on two ranks.
  void poll() override {
    if (*failed_) return;
    mpi_.poll();
  }

 private:
  using Clock = std::chrono::steady_clock;

  /// One launch (a collective, or a batch of sends and receives): the event recorded after it on
  /// the group's stream. A queued batch is not launched yet (done is null).
  struct Launch {
    cudaEvent_t done = nullptr;
    Launch() = default;
    Launch(const Launch&) = delete;
    Launch& operator=(const Launch&) = delete;
    ~Launch() {
      if (done != nullptr) (void)cudaEventDestroy(done);  // deferred by CUDA until the event completes
    }
  };

  class NcclWork final : public WorkImpl {
   public:
    NcclWork(NcclProcessGroup* group, const char* op, int peer, std::shared_ptr<Launch> launch)
        : group_(group), op_(op), peer_(peer), launch_(std::move(launch)) {}

    bool test() override {
      group_->check_alive(op_);
      if (launch_->done == nullptr) group_->flush_p2p();  // a queued send or receive
      const cudaError_t status = cudaEventQuery(launch_->done);
      if (status == cudaSuccess) return true;
      if (status != cudaErrorNotReady) {
        (void)cudaGetLastError();
        group_->fail(
            op_, ::bindery::detail::concat("CUDA error while the collective ran: ", cudaGetErrorName(status),
                                           ": ", cudaGetErrorString(status)));
      }
      group_->check_async_error(op_);
      return false;
    }

    void wait() override {
      const auto start = Clock::now();
      auto next_check = start + std::chrono::milliseconds(250);
      int spins = 0;
      while (!test()) {
        const auto now = Clock::now();
        if (now >= next_check) {
          next_check = now + std::chrono::milliseconds(250);
          const std::vector<int> dead = group_->mpi_.dead_local_peers();
          if (!dead.empty()) group_->fail(op_, group_->describe_dead(dead));
          if (now - start > group_->options_.timeout)
            group_->fail(op_, ::bindery::detail::concat(
                                  "no completion after ",
                                  std::chrono::duration<double>(group_->options_.timeout).count(),
                                  " s (BINDERY_DIST_TIMEOUT); ",
                                  peer_ >= 0 ? ::bindery::detail::concat("rank ", peer_, " did not answer")
                                             : std::string("a rank is stuck, dead on another host, or called "
                                                           "another collective")));
        }
        // Spin briefly for latency, then yield the core to the compute threads.
        if (++spins > 64) std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }

   private:
    NcclProcessGroup* group_;
    const char* op_;
    int peer_;
    std::shared_ptr<Launch> launch_;
  };

  struct P2p {
    bool send;
    void* data;
    int64_t count;
    DType dtype;
    int peer;
  };

  static NcclOptions options_of(const MpiProcessGroup& mpi) {
    NcclOptions options;
    static_cast<GroupOptions&>(options) = mpi.options();
    return options;
  }

  int choose_device() const {
    int count = 0;
    cuda_setup(cudaGetDeviceCount(&count), "cudaGetDeviceCount (is a CUDA device present?)");
    BINDERY_CHECK(count > 0, DistError, where("init"), ": no CUDA device is visible");
    if (options_.device >= 0) {
      BINDERY_CHECK(options_.device < count, DistError, where("init"), ": NcclOptions::device ",
                    options_.device, " but only ", count, " devices are visible");
      return options_.device;
    }
    int local = detail::env_index("OMPI_COMM_WORLD_LOCAL_RANK");
    if (local < 0) {  // other launchers: this rank's index among the ranks on this host
      local = 0;
      for (int r = 0; r < rank_; ++r)
        if (mpi_.host(r) == mpi_.host(rank_)) ++local;
    }
    return local % count;
  }

  /// The device (cudaSetDevice), bindery's Cuda backend on it, the stream, event and scratch.
  void set_up_device() {
    device_ = choose_device();
    cuda_setup(cudaSetDevice(device_), "cudaSetDevice");
    BINDERY_CHECK(
        Cuda::device() == device_, DistError, where("init"),
        ": bindery's Cuda backend already runs on device ", Cuda::device(), ", not this rank's device ",
        device_, " (create the NcclProcessGroup before the first Cuda tensor, or pass NcclOptions::device = ",
        Cuda::device(), ")");
    cuda_setup(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    cuda_setup(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    cuda_setup(cudaMalloc(&scratch_, sizeof(int32_t)), "cudaMalloc (barrier scratch)");
    cuda_setup(cudaMemsetAsync(scratch_, 0, sizeof(int32_t), stream_), "cudaMemsetAsync (barrier scratch)");
  }

  void init_communicator() {
    // Rank 0 makes the id; a failure there reaches every rank (a flag after the id's bytes).
    std::vector<uint8_t> message(sizeof(ncclUniqueId) + 1, 0);
    std::string id_error;
    if (rank_ == 0) {
      ncclUniqueId id{};
      const ncclResult_t rc = ncclGetUniqueId(&id);
      if (rc == ncclSuccess) {
        std::memcpy(message.data(), &id, sizeof(id));
        message.back() = 1;
      } else {
        id_error = ncclGetErrorString(rc);
      }
    }
    mpi_.broadcast_raw(message.data(), static_cast<int64_t>(message.size()), DType::kUInt8, 0, Memory::kHost)
        .wait();
    if (message.back() != 1) {
      *failed_ = true;
      throw DistError(::bindery::detail::concat(where("init"), " failed: ncclGetUniqueId on rank 0",
                                                id_error.empty() ? std::string() : ": " + id_error));
    }
    ncclUniqueId id{};
    std::memcpy(&id, message.data(), sizeof(id));
    const auto deadline = setup_deadline();
#if BINDERY_NCCL_NONBLOCKING
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // init and collectives return at once; their state is polled (settle)
    const ncclResult_t rc = ncclCommInitRankConfig(&comm_, size_, id, rank_, &config);
    if (rc != ncclSuccess && rc != ncclInProgress) {
      const std::string why = reason("ncclCommInitRankConfig", rc);
      fail("init", why);
    }
    settle("init", "ncclCommInitRankConfig", rc, deadline);
#else
    const ncclResult_t rc = ncclCommInitRank(&comm_, size_, id, rank_);
    if (rc != ncclSuccess) fail("init", reason("ncclCommInitRank", rc));
    (void)deadline;
#endif
  }

  /// Waits until a non-blocking communicator has issued what the last call queued (its state leaves
  /// ncclInProgress); on an error or past `deadline`: abort, DistError.
  void settle(const char* op, const char* call, ncclResult_t rc, Clock::time_point deadline) {
    if (rc == ncclSuccess) return;
    if (rc != ncclInProgress) fail(op, reason(call, rc));
    int spins = 0;
    while (true) {
      ncclResult_t state = ncclSuccess;
      const ncclResult_t query = ncclCommGetAsyncError(comm_, &state);
      if (query != ncclSuccess) fail(op, reason("ncclCommGetAsyncError", query));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(op, reason(call, state));
      if (Clock::now() > deadline)
        fail(op, ::bindery::detail::concat(call, " still in progress after ",
                                           std::chrono::duration<double>(setup_timeout()).count(),
                                           " s (NcclOptions::setup_timeout, else BINDERY_DIST_TIMEOUT); a "
                                           "rank is missing or stuck"));
      if (++spins > 64) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::chrono::milliseconds setup_timeout() const {
    return options_.setup_timeout.count() > 0 ? options_.setup_timeout : options_.timeout;
  }
  Clock::time_point setup_deadline() const {
    return Clock::now() + setup_timeout();
  }

  /// Makes the group's stream wait for everything queued on bindery's stream so far.
  void order_after_backend(const char* op) {
    check(cudaEventRecord(ready_, Cuda::stream()), op, "cudaEventRecord (bindery's stream)");
    check(cudaStreamWaitEvent(stream_, ready_, 0), op, "cudaStreamWaitEvent");
  }

  /// Launches one collective: the queued sends and receives first, then `enqueue` after bindery's
  /// stream, then the completion event.
  template <class Enqueue>
  Work launch(const char* op, int peer, Enqueue&& enqueue) {
    flush_p2p();
    order_after_backend(op);
    auto done = std::make_shared<Launch>();
    const ncclResult_t rc = enqueue();
    settle(op, op, rc, setup_deadline());
    record(op, *done);
    return Work(std::make_unique<NcclWork>(this, op, peer, std::move(done)));
  }

  void record(const char* op, Launch& launch) {
    cudaEvent_t event = nullptr;
    check(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), op, "cudaEventCreateWithFlags");
    launch.done = event;
    check(cudaEventRecord(event, stream_), op, "cudaEventRecord (the group's stream)");
  }

  Work queue_p2p(P2p p, const char* op) {
    if (p.count == 0) return {};
    if (!batch_) batch_ = std::make_shared<Launch>();
    pending_.push_back(p);
    return Work(std::make_unique<NcclWork>(this, op, p.peer, batch_));
  }

  /// Launches the queued sends and receives as one NCCL group (see the file comment).
  void flush_p2p() {
    if (pending_.empty()) return;
    std::vector<P2p> ops = std::move(pending_);
    pending_.clear();
    std::shared_ptr<Launch> batch = std::move(batch_);
    batch_.reset();
    const char* op = ops.size() == 1 ? (ops[0].send ? "send" : "recv") : "send/recv";
    order_after_backend(op);
    ncclResult_t first = ncclGroupStart();
    if (first != ncclSuccess) fail(op, reason("ncclGroupStart", first));
    for (const P2p& p : ops) {
      const ncclDataType_t type = detail::nccl_type(p.dtype);
      const ncclResult_t rc =
          p.send ? ncclSend(p.data, static_cast<size_t>(p.count), type, p.peer, comm_, stream_)
                 : ncclRecv(p.data, static_cast<size_t>(p.count), type, p.peer, comm_, stream_);
      if (first == ncclSuccess) first = rc;
    }
    const ncclResult_t end = ncclGroupEnd();
    if (first != ncclSuccess) fail(op, reason(ops[0].send ? "ncclSend" : "ncclRecv", first));
    settle(op, "ncclGroupEnd", end, setup_deadline());
    record(op, *batch);
  }

  void check_async_error(const char* op) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t query = ncclCommGetAsyncError(comm_, &state);
    if (query != ncclSuccess) fail(op, reason("ncclCommGetAsyncError", query));
    if (state != ncclSuccess && state != ncclInProgress) fail(op, reason("NCCL (asynchronous error)", state));
  }

  void begin(const char* op, int64_t count, DType dtype) const {
    BINDERY_CHECK(detail::nccl_type(dtype) != ncclNumTypes, DistError, where(op), ": NCCL has no ",
                  dtype_name(dtype), " type (convert to float32 first)");
    BINDERY_CHECK(count >= 0, DistError, where(op), ": negative element count ", count);
  }
  void check_alive(const char* op) const {
    BINDERY_CHECK(!*failed_, DistError, where(op), ": the group failed earlier (", failure_, ")");
  }

  /// "ncclAllReduce: unhandled system error (NCCL: <last error>)"; read before any abort.
  std::string reason(const char* call, ncclResult_t rc) const {
    std::string text = ::bindery::detail::concat(call, ": ", ncclGetErrorString(rc));
#if BINDERY_NCCL_LAST_ERROR
    const char* last = ncclGetLastError(comm_);
    if (last != nullptr && *last != '\0') text += ::bindery::detail::concat(" (NCCL: ", last, ")");
#endif
    return text;
  }
  std::string describe_dead(const std::vector<int>& dead) const {
    return mpi_.describe_dead(dead);
  }

  /// Throws BackendError for a failed CUDA call outside a collective (setup).
  static void cuda_setup(cudaError_t status, const char* what) {
    ::bindery::detail::cuda_check(status, what);
  }
  /// A failed CUDA call around a collective: the group fails (abort, DistError).
  void check(cudaError_t status, const char* op, const char* call) {
    if (status == cudaSuccess) return;
    (void)cudaGetLastError();
    fail(op,
         ::bindery::detail::concat(call, ": ", cudaGetErrorName(status), ": ", cudaGetErrorString(status)));
  }

  /// Marks the group failed, aborts the communicator (the queued kernels exit), throws DistError.
  [[noreturn]] void fail(const char* op, const std::string& why) {
    failure_ = ::bindery::detail::concat(op, ": ", why);
    abort_communicator();
    throw DistError(::bindery::detail::concat(
        where(op), " failed: ", why, " (communicator aborted: every later call of this group throws)"));
  }
  void abort_communicator() noexcept {
    *failed_ = true;
    pending_.clear();
    batch_.reset();
    if (comm_ != nullptr) {
      (void)ncclCommAbort(comm_);
      comm_ = nullptr;
    }
  }

  /// Healthy destruction: ncclCommFinalize (waiting, with the deadline, until the communicator is
  /// quiescent), then ncclCommDestroy; an expired deadline aborts instead.
  void finalize() {
#if BINDERY_NCCL_NONBLOCKING
    const ncclResult_t rc = ncclCommFinalize(comm_);
    try {
      settle("destroy", "ncclCommFinalize", rc, setup_deadline());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bindery::dist: %s\n", e.what());  // settle aborted the communicator
      return;
    }
#endif
    const ncclResult_t destroyed = ncclCommDestroy(comm_);
    comm_ = nullptr;
    if (destroyed != ncclSuccess)
      std::fprintf(stderr, "bindery::dist: rank %d: ncclCommDestroy: %s\n", rank_,
                   ncclGetErrorString(destroyed));
  }

  /// Frees the stream, event and scratch (never blocking: a failed group's kernels may still run).
  void release() noexcept {
    if (comm_ != nullptr) abort_communicator();
    if (scratch_ != nullptr && !*failed_) (void)cudaFree(scratch_);  // cudaFree may wait for the device
    scratch_ = nullptr;
    if (ready_ != nullptr) (void)cudaEventDestroy(ready_);
    ready_ = nullptr;
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);  // returns at once; freed when idle
    stream_ = nullptr;
  }

  MpiProcessGroup& mpi_;
  NcclOptions options_;
  int rank_ = 0, size_ = 1;
  int device_ = -1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  int32_t* scratch_ = nullptr;
  std::vector<P2p> pending_;
  std::shared_ptr<Launch> batch_;
  std::shared_ptr<bool> failed_ = std::make_shared<bool>(false);
  std::string failure_;
};

}  // namespace bindery::dist
