// bindery/dist/mpi.hpp — a ProcessGroup on MPI (OpenMPI), for host tensors. Needs <mpi.h>: link
// the CMake target bindery::mpi (find_package(bindery COMPONENTS mpi)).
//
//   mpirun -np 2 ./train                     # one machine
//   mpirun -np 16 --hostfile hosts ./train   # several: "host1 slots=8" lines
//
//   auto group = std::make_shared<dist::MpiProcessGroup>();   // MPI_Init_thread if not done yet
//
// Every collective is MPI's non-blocking one (MPI_Iallreduce, MPI_Iallgatherv, ...), so a Work can
// be left in flight while the caller computes; MPI progresses it inside MPI calls, which is what
// poll() and Work::is_completed() make. The group works on a duplicate of MPI_COMM_WORLD with
// MPI_ERRORS_RETURN, so MPI failures become DistError instead of aborting.
//
// Floating-point all_reduce is a reduce-scatter followed by an all-gather (the ring's two halves):
// each element is summed on one rank only and copied to the others, so every rank holds the same
// bits (MPI_Allreduce does not promise that). The all-gather is posted only once the reduce-scatter
// completed, and on a second communicator: MPI needs every rank to post the collectives of one
// communicator in the same order, and the moment a first half completes differs between ranks. So
// the second halves take tickets in the order their operations were started, and post in that
// order (waiting for an earlier operation drives it).
//
// Failure detection. While waiting, the group checks every 250 ms whether the peers on this host
// are alive (their process ids, exchanged at start); a dead one ends the wait with DistError naming
// it. Peers on other hosts are covered by the deadline (GroupOptions::timeout) and by mpirun, which
// by default ends the whole job as soon as one process is killed ("mpirun noticed that process
// rank 1 ... exited on signal 9"). After a failure the group never calls MPI_Finalize (it would
// wait for the dead peer): the process exits and mpirun reports it.
#pragma once

#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bindery/dist/process_group.hpp"

namespace bindery::dist {

namespace detail {

inline MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::kFloat32:
      return MPI_FLOAT;
    case DType::kFloat64:
      return MPI_DOUBLE;
    case DType::kInt64:
      return MPI_INT64_T;
    case DType::kUInt64:
      return MPI_UINT64_T;
    case DType::kInt32:
      return MPI_INT32_T;
    case DType::kUInt8:
      return MPI_UINT8_T;
    default:
      return MPI_DATATYPE_NULL;
  }
}

inline MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  return MPI_SUM;
}

inline std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

/// True when process `pid` exists on this host and is not a zombie.
inline bool process_alive(long pid) {
  if (pid <= 0) return true;  // unknown: assume alive
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // no /proc: kill() said it exists
  const size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

/// Divides n elements of a floating type by `by` (for ReduceOp::kAverage).
inline void divide_in_place(void* data, int64_t n, DType dtype, int by) {
  if (dtype == DType::kFloat32) {
    float* p = static_cast<float*>(data);
    for (int64_t i = 0; i < n; ++i) p[i] /= static_cast<float>(by);
  } else if (dtype == DType::kFloat64) {
    double* p = static_cast<double*>(data);
    for (int64_t i = 0; i < n; ++i) p[i] /= static_cast<double>(by);
  }
}

}  // namespace detail

class MpiProcessGroup final : public ProcessGroup {
 public:
  /// Joins MPI_COMM_WORLD (initializing MPI when nobody did; then this group finalizes it).
  explicit MpiProcessGroup(GroupOptions options = options_from_environment()) : options_(options) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      BINDERY_CHECK(rc == MPI_SUCCESS, DistError,
                    "dist: MPI_Init_thread failed: ", detail::mpi_error_string(rc));
      owns_mpi_ = true;
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_dup(MPI_COMM_WORLD, &second_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(second_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    // Who is where: (pid, host) of every rank, for the liveness checks and the error messages.
    char host[MPI_MAX_PROCESSOR_NAME] = {};
    int host_length = 0;
    MPI_Get_processor_name(host, &host_length);
    host_ = std::string(host, static_cast<size_t>(host_length));
    std::vector<char> hosts(static_cast<size_t>(size_) * MPI_MAX_PROCESSOR_NAME);
    check(MPI_Allgather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts.data(), MPI_MAX_PROCESSOR_NAME,
                        MPI_CHAR, comm_),
          "MPI_Allgather (host names)");
    const long pid = static_cast<long>(::getpid());
    pids_.resize(static_cast<size_t>(size_));
    check(MPI_Allgather(&pid, 1, MPI_LONG, pids_.data(), 1, MPI_LONG, comm_), "MPI_Allgather (process ids)");
    for (int r = 0; r < size_; ++r)
      hosts_.emplace_back(hosts.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME);
  }
  MpiProcessGroup(const MpiProcessGroup&) = delete;
  MpiProcessGroup& operator=(const MpiProcessGroup&) = delete;
  ~MpiProcessGroup() override {
    if (*failed_) return;  // a dead peer would make these wait forever
    MPI_Comm_free(&comm_);
    MPI_Comm_free(&second_);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_mpi_ && !finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* engine() const override { return "mpi"; }
  bool supports(Memory memory) const override { return memory == Memory::kHost; }
  const GroupOptions& options() const override { return options_; }
  MPI_Comm comm() const { return comm_; }
  /// The host name and process id of `rank` (exchanged at start).
  const std::string& host(int rank) const { return hosts_.at(static_cast<size_t>(rank)); }
  long pid(int rank) const { return pids_.at(static_cast<size_t>(rank)); }
  bool failed() const { return *failed_; }

  Work all_reduce_raw(void* data, int64_t count, DType dtype, ReduceOp op, Memory memory) override {
    begin("all_reduce", count, dtype, memory);
    BINDERY_CHECK(op != ReduceOp::kAverage || dtype_is_floating(dtype), DistError, where("all_reduce"),
                  ": average of ", dtype_name(dtype), " values (use sum)");
    if (count == 0 || size_ == 1) return {};
    auto work = make_work("all_reduce");
    if (!dtype_is_floating(dtype) || !options_.identical_results) {
      work->post([=, this](MPI_Request* r) {
        return MPI_Iallreduce(MPI_IN_PLACE, data, to_int(count), detail::mpi_type(dtype), detail::mpi_op(op),
                              comm_, r);
      });
      if (op == ReduceOp::kAverage)
        work->then([=, this] { detail::divide_in_place(data, count, dtype, size_); });
      return Work(std::move(work));
    }
    // Reduce-scatter into one block per rank, then all-gather the blocks: same bits everywhere.
    const int64_t block = (count + size_ - 1) / size_;
    const size_t bytes = dtype_size(dtype);
    auto buffer = std::make_shared<std::vector<unsigned char>>(static_cast<size_t>(block * size_) * bytes, 0);
    std::memcpy(buffer->data(), data, static_cast<size_t>(count) * bytes);
    auto mine = std::make_shared<std::vector<unsigned char>>(static_cast<size_t>(block) * bytes);
    work->post([=, this](MPI_Request* r) {
      return MPI_Ireduce_scatter_block(buffer->data(), mine->data(), to_int(block), detail::mpi_type(dtype),
                                       detail::mpi_op(op), comm_, r);
    });
    work->post_in_turn([=, this](MPI_Request* r) {
      if (op == ReduceOp::kAverage) detail::divide_in_place(mine->data(), block, dtype, size_);
      return MPI_Iallgather(mine->data(), to_int(block), detail::mpi_type(dtype), buffer->data(),
                            to_int(block), detail::mpi_type(dtype), second_, r);
    });
    work->then([=] { std::memcpy(data, buffer->data(), static_cast<size_t>(count) * bytes); });
    return Work(std::move(work));
  }

  Work all_gather_raw(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                      Memory memory) override {
    BINDERY_CHECK(static_cast<int>(counts.size()) == size_, DistError, where("all_gather"), ": ",
                  counts.size(), " counts for ", size_, " ranks");
    begin("all_gather", counts[static_cast<size_t>(rank_)], dtype, memory);
    auto recv_counts = std::make_shared<std::vector<int>>();
    auto displacements = std::make_shared<std::vector<int>>();
    int64_t at = 0;
    for (int64_t c : counts) {
      BINDERY_CHECK(c >= 0, DistError, where("all_gather"), ": negative count ", c);
      recv_counts->push_back(to_int(c));
      displacements->push_back(to_int(at));
      at += c;
    }
    auto work = make_work("all_gather");
    work->post([=, this](MPI_Request* r) {
      return MPI_Iallgatherv(send, (*recv_counts)[static_cast<size_t>(rank_)], detail::mpi_type(dtype), recv,
                             recv_counts->data(), displacements->data(), detail::mpi_type(dtype), comm_, r);
    });
    return Work(std::move(work));
  }

  Work reduce_scatter_raw(const void* send, void* recv, int64_t count, DType dtype, ReduceOp op,
                          Memory memory) override {
    begin("reduce_scatter", count * size_, dtype, memory);
    BINDERY_CHECK(op != ReduceOp::kAverage || dtype_is_floating(dtype), DistError, where("reduce_scatter"),
                  ": average of ", dtype_name(dtype), " values (use sum)");
    auto work = make_work("reduce_scatter");
    work->post([=, this](MPI_Request* r) {
      return MPI_Ireduce_scatter_block(send, recv, to_int(count), detail::mpi_type(dtype), detail::mpi_op(op),
                                       comm_, r);
    });
    if (op == ReduceOp::kAverage)
      work->then([=, this] { detail::divide_in_place(recv, count, dtype, size_); });
    return Work(std::move(work));
  }

  Work broadcast_raw(void* data, int64_t count, DType dtype, int root, Memory memory) override {
    begin("broadcast", count, dtype, memory);
    check_peer("broadcast", root, true);
    auto work = make_work("broadcast");
    work->post([=, this](MPI_Request* r) {
      return MPI_Ibcast(data, to_int(count), detail::mpi_type(dtype), root, comm_, r);
    });
    return Work(std::move(work));
  }

  Work barrier() override {
    check_alive("barrier");
    auto work = make_work("barrier");
    work->post([this](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
    return Work(std::move(work));
  }

  Work send_raw(const void* data, int64_t count, DType dtype, int dst, int tag, Memory memory) override {
    begin("send", count, dtype, memory);
    check_peer("send", dst, false);
    auto work = make_work("send", dst);
    work->post([=, this](MPI_Request* r) {
      return MPI_Isend(data, to_int(count), detail::mpi_type(dtype), dst, tag, comm_, r);
    });
    return Work(std::move(work));
  }
  Work recv_raw(void* data, int64_t count, DType dtype, int src, int tag, Memory memory) override {
    begin("recv", count, dtype, memory);
    check_peer("recv", src, false);
    auto work = make_work("recv", src);
    work->post([=, this](MPI_Request* r) {
      return MPI_Irecv(data, to_int(count), detail::mpi_type(dtype), src, tag, comm_, r);
    });
    return Work(std::move(work));
  }

  void poll() override {
    if (*failed_) return;
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, MPI_STATUS_IGNORE);  // drives MPI's progress
  }

  /// "rank 1 (pid 4855 on vm) is dead, ..." for the ranks in `dead` (error messages of any engine
  /// bootstrapped from this group).
  std::string describe_dead(const std::vector<int>& dead) const {
    std::string s;
    for (int r : dead)
      s += ::bindery::detail::concat(s.empty() ? "" : ", ", "rank ", r, " (pid ",
                                     pids_[static_cast<size_t>(r)], " on ", hosts_[static_cast<size_t>(r)],
                                     ") is dead");
    return s;
  }

  /// The ranks on this host whose process is gone (empty when all live).
  std::vector<int> dead_local_peers() const {
    std::vector<int> dead;
    for (int r = 0; r < size_; ++r)
      if (r != rank_ && hosts_[static_cast<size_t>(r)] == host_ &&
          !detail::process_alive(pids_[static_cast<size_t>(r)]))
        dead.push_back(r);
    return dead;
  }

 private:
  /// One collective: a chain of MPI requests posted one after the other (the next when the previous
  /// completed), then host-side finishing steps.
  class MpiWork final : public WorkImpl {
   public:
    using Post = std::function<int(MPI_Request*)>;
    MpiWork(MpiProcessGroup* group, const char* op, int peer) : group_(group), op_(op), peer_(peer) {}
    ~MpiWork() override { std::erase(group_->in_turn_, this); }
    /// The first stage (posted now) or a later one (posted when the previous completes).
    void post(Post p) {
      stages_.push_back(std::move(p));
      if (stages_.size() == 1) start_next();
    }
    /// A later stage on the second communicator: posted in the order of the tickets.
    void post_in_turn(Post p) {
      ticket_ = group_->tickets_issued_++;
      group_->in_turn_.push_back(this);
      stages_.push_back(std::move(p));
    }
    void then(std::function<void()> f) { finish_.push_back(std::move(f)); }
    uint64_t ticket() const { return ticket_; }

    bool test() override {
      if (!advance()) {
        group_->drive_in_turn(this);
        return advance();
      }
      return true;
    }

    /// Progress without helping others: true once complete.
    bool advance() {
      while (true) {
        if (request_ == MPI_REQUEST_NULL) {
          if (next_ >= stages_.size()) break;
          if (ticket_ != kNoTicket && next_ == stages_.size() - 1) {  // the in-turn stage
            if (group_->tickets_posted_ != ticket_) return false;
            ++group_->tickets_posted_;
            std::erase(group_->in_turn_, this);
          }
          start_next();
          continue;
        }
        BINDERY_CHECK(!*group_->failed_, DistError, group_->where(op_), ": the group failed earlier");
        int done = 0;
        const int rc = MPI_Test(&request_, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) group_->fail(op_, "MPI_Test: " + detail::mpi_error_string(rc));
        if (!done) return false;
        request_ = MPI_REQUEST_NULL;
      }
      for (auto& f : finish_) f();
      finish_.clear();
      return true;
    }

    void wait() override {
      using clock = std::chrono::steady_clock;
      const auto start = clock::now();
      auto next_check = start + std::chrono::milliseconds(250);
      int spins = 0;
      while (!test()) {
        const auto now = clock::now();
        if (now >= next_check) {
          next_check = now + std::chrono::milliseconds(250);
          const std::vector<int> dead = group_->dead_local_peers();
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
        // MPI moves data only inside its calls: poll hard for the first 50 ms (yielding the core to
        // runnable threads), then every 20 us, so a rank waiting for a slow peer does not burn a core.
        if (++spins > 64) {
          if (now - start < std::chrono::milliseconds(50))
            std::this_thread::yield();
          else
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
      }
    }

   private:
    static constexpr uint64_t kNoTicket = ~uint64_t{0};
    void start_next() {
      BINDERY_CHECK(!*group_->failed_, DistError, group_->where(op_), ": the group failed earlier");
      const int rc = stages_[next_++](&request_);
      if (rc != MPI_SUCCESS) group_->fail(op_, detail::mpi_error_string(rc));
    }
    MpiProcessGroup* group_;
    const char* op_;
    int peer_;
    std::vector<Post> stages_;
    size_t next_ = 0;
    uint64_t ticket_ = kNoTicket;
    MPI_Request request_ = MPI_REQUEST_NULL;
    std::vector<std::function<void()>> finish_;
  };

  /// Advances, in ticket order, the operations whose in-turn stage comes before `self`'s.
  void drive_in_turn(MpiWork* self) {
    const std::vector<MpiWork*> waiting = in_turn_;  // advance() may erase from in_turn_
    for (MpiWork* w : waiting) {
      if (w == self) break;
      w->advance();
      if (tickets_posted_ <= w->ticket()) break;  // its second stage is not posted yet: later ones wait
    }
  }

  std::unique_ptr<MpiWork> make_work(const char* op, int peer = -1) {
    return std::make_unique<MpiWork>(this, op, peer);
  }

  void begin(const char* op, int64_t count, DType dtype, Memory memory) const {
    check_alive(op);
    BINDERY_CHECK(memory == Memory::kHost, DistError, where(op),
                  ": MPI carries host memory only (use an NcclProcessGroup for Cuda tensors)");
    BINDERY_CHECK(detail::mpi_type(dtype) != MPI_DATATYPE_NULL, DistError, where(op), ": MPI has no ",
                  dtype_name(dtype), " type here (convert to float32 first)");
    BINDERY_CHECK(count >= 0, DistError, where(op), ": negative element count ", count);
  }
  void check_alive(const char* op) const {
    BINDERY_CHECK(!*failed_, DistError, where(op), ": the group failed earlier (", failure_, ")");
  }
  int to_int(int64_t n) const {
    BINDERY_CHECK(n <= INT_MAX, DistError, where("collective"), ": ", n,
                  " elements in one message exceed MPI's int count (split the tensor)");
    return static_cast<int>(n);
  }
  void check(int rc, const char* call) {
    if (rc != MPI_SUCCESS) fail(call, detail::mpi_error_string(rc));
  }
  [[noreturn]] void fail(const char* op, const std::string& why) {
    *failed_ = true;
    failure_ = ::bindery::detail::concat(op, ": ", why);
    throw DistError(::bindery::detail::concat(where(op), " failed: ", why));
  }

  GroupOptions options_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm second_ = MPI_COMM_NULL;  // the in-turn stages (see the file comment)
  uint64_t tickets_issued_ = 0, tickets_posted_ = 0;
  std::vector<MpiWork*> in_turn_;  // operations with an in-turn stage not yet posted, in ticket order
  int rank_ = 0, size_ = 1;
  bool owns_mpi_ = false;
  std::shared_ptr<bool> failed_ = std::make_shared<bool>(false);
  std::string failure_;
  std::string host_;
  std::vector<std::string> hosts_;
  std::vector<long> pids_;
};

}  // namespace bindery::dist
