// bindery/dist/process_group.hpp — the interface of a group of processes that train together.
//
// A ProcessGroup is PyTorch's c10d ProcessGroup in bindery's terms: `size()` processes, each with
// its `rank()`, that call the same collectives in the same order. Every collective is asynchronous:
// it returns a Work handle, and the result is in place once `wait()` returns.
//
//   dist::ProcessGroup& pg = *group;                  // from dist::init() (dist/init.hpp)
//   Tensor<float> g = ...;                            // a contiguous host tensor
//   pg.all_reduce(g, dist::ReduceOp::kAverage).wait();  // every rank now holds the mean
//   Tensor<float> all = pg.all_gather(local);         // (sum of every rank's rows, ...) in rank order
//
// The engines live in their own headers, so the core compiles without them:
//   dist/single.hpp  SingleProcessGroup — size 1, no dependency: distributed code runs unchanged.
//   dist/mpi.hpp     MpiProcessGroup — OpenMPI, host tensors; mpirun is the launcher (bindery::mpi).
//   dist/nccl.hpp    NcclProcessGroup — NCCL, Cuda tensors, one GPU per rank (bindery::nccl).
//
// Determinism. Floating-point all_reduce is computed so that every rank receives the same bits
// (each element is reduced on exactly one rank, then copied to the others): data-parallel replicas
// stay bit-identical step after step. (Engines whose reduction order may differ per rank would let
// the replicas drift apart by rounding.)
//
// Failure. Each wait() has a deadline (Options::timeout). While waiting, engines check that their
// peers are alive where they can (same-host process ids); a dead peer or an expired deadline throws
// DistError naming this rank, the operation and, when known, the dead rank. After an error the
// group is failed: every later call throws at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindery/core/error.hpp"
#include "bindery/core/float16.hpp"
#include "bindery/core/tensor.hpp"

namespace bindery::dist {

/// bindery::DistError (core/error.hpp): what every failed collective throws.
using ::bindery::DistError;

enum class ReduceOp { kSum, kAverage, kMax, kMin };

inline const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAverage:
      return "average";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

/// Element types a collective carries.
enum class DType { kFloat32, kFloat64, kInt64, kUInt64, kInt32, kUInt8, kBFloat16, kFloat16 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kInt64:
      return 8;
    case DType::kUInt64:
      return 8;
    case DType::kInt32:
      return 4;
    case DType::kUInt8:
      return 1;
    case DType::kBFloat16:
      return 2;
    case DType::kFloat16:
      return 2;
  }
  return 0;
}
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt64:
      return "int64";
    case DType::kUInt64:
      return "uint64";
    case DType::kInt32:
      return "int32";
    case DType::kUInt8:
      return "uint8";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat16:
      return "float16";
  }
  return "?";
}
inline bool dtype_is_floating(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kBFloat16 || t == DType::kFloat16;
}

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::kFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::kFloat64;
  else if constexpr (std::is_same_v<T, int64_t>)
    return DType::kInt64;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return DType::kUInt64;
  else if constexpr (std::is_same_v<T, int32_t>)
    return DType::kInt32;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return DType::kUInt8;
  else if constexpr (std::is_same_v<T, bfloat16>)
    return DType::kBFloat16;
  else if constexpr (std::is_same_v<T, float16>)
    return DType::kFloat16;
  else
    static_assert(sizeof(T) == 0, "dist: no collective for this element type");
}

/// Where a buffer lives: engines say which they can carry.
enum class Memory { kHost, kDevice };

/// The state of one asynchronous collective. Engines derive from it; users hold a Work.
class WorkImpl {
 public:
  virtual ~WorkImpl() = default;
  /// Advances the operation without blocking; true once it has completed (throws DistError on failure).
  virtual bool test() = 0;
  /// Blocks until completion or the group's deadline (DistError).
  virtual void wait() = 0;
};

/// The handle of an asynchronous collective (c10d's Work). wait() returns when the result is in
/// place; dropping an unfinished handle waits for it (errors are then reported on stderr and the
/// group marked failed, since a destructor cannot throw).
class [[nodiscard]] Work {
 public:
  Work() = default;
  explicit Work(std::unique_ptr<WorkImpl> impl) : impl_(std::move(impl)) {}
  Work(Work&&) noexcept = default;
  Work& operator=(Work&& other) noexcept {
    if (this != &other) {
      finish_quietly();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  ~Work() { finish_quietly(); }

  /// True once the result is in place (does not block).
  bool is_completed() {
    if (!impl_) return true;
    if (impl_->test()) {
      impl_.reset();
      return true;
    }
    return false;
  }
  /// Blocks until the result is in place; DistError when a peer died or the deadline passed.
  void wait() {
    if (!impl_) return;
    std::unique_ptr<WorkImpl> impl = std::move(impl_);
    impl->wait();
  }

 private:
  void finish_quietly() noexcept {
    if (!impl_) return;
    try {
      impl_->wait();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bindery::dist: an unwaited collective failed: %s\n", e.what());
    }
    impl_.reset();
  }
  std::unique_ptr<WorkImpl> impl_;
};

/// Options every engine takes.
struct GroupOptions {
  /// The deadline of every wait(): a collective that does not complete in this time throws
  /// DistError. Also settable with the environment variable BINDERY_DIST_TIMEOUT (seconds).
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
  /// Floating-point all_reduce computed so that every rank receives the same bits by construction
  /// (MPI: a reduce-scatter then an all-gather). false: the engine's own all-reduce (MPI_Iallreduce,
  /// faster; Open MPI's algorithms also agree across ranks in our tests, but MPI does not promise
  /// it). Environment: BINDERY_DIST_IDENTICAL=0 sets false.
  bool identical_results = true;
};

/// Reads BINDERY_DIST_TIMEOUT (seconds, > 0) into options.timeout when set; ValueError when malformed.
inline GroupOptions options_from_environment(GroupOptions options = {}) {
  if (const char* env = std::getenv("BINDERY_DIST_TIMEOUT"); env && *env) {
    char* end = nullptr;
    const double seconds = std::strtod(env, &end);
    BINDERY_CHECK(end && *end == '\0' && seconds > 0 && seconds < 1e7, ValueError, "BINDERY_DIST_TIMEOUT=\"",
                  env, "\" must be a positive number of seconds");
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
  }
  if (const char* env = std::getenv("BINDERY_DIST_IDENTICAL"); env && *env) {
    const std::string v = env;
    BINDERY_CHECK(v == "0" || v == "1", ValueError, "BINDERY_DIST_IDENTICAL=\"", v, "\" must be 0 or 1");
    options.identical_results = v == "1";
  }
  return options;
}

/// The group interface. The raw methods take element counts, not bytes; buffers must stay alive
/// and untouched until the returned Work completes. The Tensor methods below check shapes and
/// contiguity and call them.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "single", "mpi", "nccl".
  virtual const char* engine() const = 0;
  /// Whether buffers in `memory` can be passed to this group.
  virtual bool supports(Memory memory) const = 0;
  virtual const GroupOptions& options() const = 0;

  // ---- raw collectives (asynchronous) ---------------------------------------------------------
  /// data[0..count) reduced element-wise over the ranks, in place on every rank.
  virtual Work all_reduce_raw(void* data, int64_t count, DType dtype, ReduceOp op, Memory memory) = 0;
  /// Rank r contributes counts[r] elements (`send`); every rank receives them all, concatenated in
  /// rank order, in `recv` (sum(counts) elements). counts must be the same on every rank.
  virtual Work all_gather_raw(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                              Memory memory) = 0;
  /// `send` holds size() blocks of `count` elements; rank r receives in `recv` block r reduced.
  virtual Work reduce_scatter_raw(const void* send, void* recv, int64_t count, DType dtype, ReduceOp op,
                                  Memory memory) = 0;
  /// Rank `root`'s data[0..count) copied to every rank.
  virtual Work broadcast_raw(void* data, int64_t count, DType dtype, int root, Memory memory) = 0;
  virtual Work barrier() = 0;
  virtual Work send_raw(const void* data, int64_t count, DType dtype, int dst, int tag, Memory memory) = 0;
  virtual Work recv_raw(void* data, int64_t count, DType dtype, int src, int tag, Memory memory) = 0;
  /// Lets the engine progress outstanding operations (MPI progresses only inside its calls): data
  /// parallelism calls it during backward so that communication overlaps computation.
  virtual void poll() {}

  // ---- typed collectives on tensors -----------------------------------------------------------
  /// In place: t reduced over the ranks. t must be contiguous with the same shape on every rank.
  template <class T, class B>
  Work all_reduce(Tensor<T, B>& t, ReduceOp op = ReduceOp::kSum) {
    check_tensor("all_reduce", t);
    return all_reduce_raw(t.data(), t.numel(), dtype_of<T>(), op, memory_of<B>());
  }
  /// Every rank's `local` (same shape after the first axis on every rank; the first axes may
  /// differ) concatenated along axis 0 in rank order; blocks. Scalars are gathered as (size(),).
  template <class T, class B>
  Tensor<T, B> all_gather(const Tensor<T, B>& local) {
    const std::vector<int64_t> rows =
        size() == 1 ? std::vector<int64_t>{local.rank() == 0 ? 1 : local.size(0)} : gather_rows(local);
    return all_gather(local, rows);
  }
  /// Same, with every rank's number of rows already known (rows[r] for rank r).
  template <class T, class B>
  Tensor<T, B> all_gather(const Tensor<T, B>& local, const std::vector<int64_t>& rows) {
    const Tensor<T, B> x = local.rank() == 0 ? local.reshape({1}) : local.contiguous();
    if (size() == 1) return x.clone();  // also for memory the single group cannot copy raw
    BINDERY_CHECK(static_cast<int>(rows.size()) == size(), DistError, where("all_gather"), ": ", rows.size(),
                  " row counts for ", size(), " ranks");
    BINDERY_CHECK(rows[static_cast<size_t>(rank())] == x.size(0), DistError, where("all_gather"),
                  ": this rank holds ", x.size(0), " rows but the row counts say ",
                  rows[static_cast<size_t>(rank())]);
    const int64_t inner = x.size(0) > 0 ? x.numel() / x.size(0) : row_elements(x.shape());
    std::vector<int64_t> counts(rows.size());
    int64_t total = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
      counts[r] = rows[r] * inner;
      total += rows[r];
    }
    std::vector<int64_t> dims(x.shape().begin(), x.shape().end());
    dims[0] = total;
    Tensor<T, B> out = Tensor<T, B>::empty(Shape(dims));
    all_gather_raw(x.data(), out.data(), counts, dtype_of<T>(), memory_of<B>()).wait();
    return out;
  }
  /// Rank r receives the reduction of block r of `input` (input: (size() * n, ...) -> (n, ...)).
  template <class T, class B>
  Tensor<T, B> reduce_scatter(const Tensor<T, B>& input, ReduceOp op = ReduceOp::kSum) {
    const Tensor<T, B> x = input.contiguous();
    BINDERY_CHECK(x.rank() >= 1 && x.size(0) % size() == 0, DistError, where("reduce_scatter"),
                  ": input of shape ", x.shape(), " must have a first axis divisible by the group size ",
                  size());
    if (size() == 1) return x.clone();
    std::vector<int64_t> dims(x.shape().begin(), x.shape().end());
    dims[0] /= size();
    Tensor<T, B> out = Tensor<T, B>::empty(Shape(dims));
    reduce_scatter_raw(x.data(), out.data(), out.numel(), dtype_of<T>(), op, memory_of<B>()).wait();
    return out;
  }
  /// In place: rank `root`'s t copied to every rank (same shape everywhere).
  template <class T, class B>
  Work broadcast(Tensor<T, B>& t, int root = 0) {
    check_tensor("broadcast", t);
    check_peer("broadcast", root, true);
    return broadcast_raw(t.data(), t.numel(), dtype_of<T>(), root, memory_of<B>());
  }
  template <class T, class B>
  Work send(const Tensor<T, B>& t, int dst, int tag = 0) {
    check_tensor("send", t);
    check_peer("send", dst, false);
    return send_raw(t.data(), t.numel(), dtype_of<T>(), dst, tag, memory_of<B>());
  }
  template <class T, class B>
  Work recv(Tensor<T, B>& t, int src, int tag = 0) {
    check_tensor("recv", t);
    check_peer("recv", src, false);
    return recv_raw(t.data(), t.numel(), dtype_of<T>(), src, tag, memory_of<B>());
  }

  /// Host values, for bookkeeping (losses, counters, random states): reduced / broadcast / gathered.
  template <class T>
  std::vector<T> all_reduce_values(std::vector<T> values, ReduceOp op = ReduceOp::kSum) {
    if (!values.empty())
      all_reduce_raw(values.data(), static_cast<int64_t>(values.size()), dtype_of<T>(), op, Memory::kHost)
          .wait();
    return values;
  }
  template <class T>
  T all_reduce_value(T value, ReduceOp op = ReduceOp::kSum) {
    return all_reduce_values(std::vector<T>{value}, op)[0];
  }
  /// Every rank's vector (any lengths), in rank order.
  template <class T>
  std::vector<std::vector<T>> all_gather_values(const std::vector<T>& local) {
    const std::vector<int64_t> counts = gather_counts(static_cast<int64_t>(local.size()));
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    std::vector<T> flat(static_cast<size_t>(total));
    all_gather_raw(local.data(), flat.data(), counts, dtype_of<T>(), Memory::kHost).wait();
    std::vector<std::vector<T>> out;
    int64_t at = 0;
    for (int64_t c : counts) {
      out.emplace_back(flat.begin() + at, flat.begin() + at + c);
      at += c;
    }
    return out;
  }
  /// Rank root's bytes (any length) to every rank.
  std::string broadcast_string(const std::string& value, int root = 0) {
    int64_t n = rank() == root ? static_cast<int64_t>(value.size()) : 0;
    broadcast_raw(&n, 1, DType::kInt64, root, Memory::kHost).wait();
    std::string out = rank() == root ? value : std::string(static_cast<size_t>(n), '\0');
    if (n > 0) broadcast_raw(out.data(), n, DType::kUInt8, root, Memory::kHost).wait();
    return out;
  }

  /// Every rank's number of rows of `local` (a scalar counts as one row), in rank order; DistError
  /// on every rank when the ranks' tensors differ in rank or row shape.
  template <class T, class B>
  std::vector<int64_t> gather_rows(const Tensor<T, B>& local) {
    const int64_t rows = local.rank() == 0 ? 1 : local.size(0);
    // Every rank also sends its row shape: a mismatch is an error on every rank, not garbage.
    std::vector<int64_t> mine{rows, local.rank()};
    for (int64_t i = 1; i < local.rank(); ++i) mine.push_back(local.size(i));
    mine.resize(10, -1);
    BINDERY_CHECK(local.rank() <= 9, DistError, where("all_gather"), ": rank ", local.rank(),
                  " tensors are not supported");
    std::vector<int64_t> all(mine.size() * static_cast<size_t>(size()));
    all_gather_raw(mine.data(), all.data(), std::vector<int64_t>(static_cast<size_t>(size()), 10),
                   DType::kInt64, Memory::kHost)
        .wait();
    std::vector<int64_t> rows_per_rank;
    for (int r = 0; r < size(); ++r) {
      const int64_t* theirs = all.data() + 10 * r;
      BINDERY_CHECK(std::equal(theirs + 1, theirs + 10, mine.begin() + 1), DistError, where("all_gather"),
                    ": rank ", r, " holds a tensor of another rank or row shape than this rank's ",
                    local.shape());
      rows_per_rank.push_back(theirs[0]);
    }
    return rows_per_rank;
  }

  /// "rank 1/3 (mpi) all_reduce": the start of every error message.
  std::string where(const char* op) const {
    return ::bindery::detail::concat("dist: rank ", rank(), "/", size(), " (", engine(), ") ", op);
  }

 protected:
  template <class B>
  Memory memory_of() const {
    const Memory m = B::kHostAccessible ? Memory::kHost : Memory::kDevice;
    BINDERY_CHECK(supports(m), DistError, "dist: the ", engine(), " group cannot carry ", B::kName,
                  " tensors (",
                  engine() == std::string("nccl") ? "use an MpiProcessGroup for host tensors"
                                                  : "use an NcclProcessGroup for Cuda tensors",
                  ")");
    return m;
  }
  template <class T, class B>
  void check_tensor(const char* op, const Tensor<T, B>& t) const {
    BINDERY_CHECK(t.defined(), DistError, where(op), ": undefined tensor");
    BINDERY_CHECK(t.is_contiguous(), DistError, where(op), ": tensor of shape ", t.shape(),
                  " is not contiguous (call .contiguous() first; the collective writes in place)");
  }
  void check_peer(const char* op, int peer, bool self_ok) const {
    BINDERY_CHECK(peer >= 0 && peer < size() && (self_ok || peer != rank()), DistError, where(op),
                  ": peer rank ", peer, " is not ", self_ok ? "in [0, size)" : "another rank of the group");
  }
  static int64_t row_elements(const Shape& s) {
    int64_t n = 1;
    for (int64_t i = 1; i < s.rank(); ++i) n *= s[i];
    return n;
  }
  /// Every rank's count, in rank order (one all_gather of one int64 each).
  std::vector<int64_t> gather_counts(int64_t local) {
    std::vector<int64_t> counts(static_cast<size_t>(size()));
    all_gather_raw(&local, counts.data(), std::vector<int64_t>(static_cast<size_t>(size()), 1), DType::kInt64,
                   Memory::kHost)
        .wait();
    return counts;
  }
};

/// A module whose forward needs the group (the gathered InfoNCE): the Trainer hands its group to
/// every such module it trains.
class GroupAware {
 public:
  virtual ~GroupAware() = default;
  virtual void set_process_group(std::shared_ptr<ProcessGroup> group) = 0;
};

}  // namespace bindery::dist
