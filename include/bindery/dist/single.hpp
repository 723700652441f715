// bindery/dist/single.hpp — the group of one process: distributed code runs unchanged without MPI.
//
// Every collective completes at once: a reduction over one rank is the identity, a gather copies.
// Host and device tensors are both accepted (the typed methods of ProcessGroup never copy device
// memory through the raw methods when size() is 1).
#pragma once

#include <cstring>

#include "bindery/dist/process_group.hpp"

namespace bindery::dist {

class SingleProcessGroup final : public ProcessGroup {
 public:
  explicit SingleProcessGroup(GroupOptions options = {}) : options_(options) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* engine() const override { return "single"; }
  bool supports(Memory) const override { return true; }
  const GroupOptions& options() const override { return options_; }

  Work all_reduce_raw(void*, int64_t count, DType, ReduceOp, Memory) override {
    check_count("all_reduce", count);
    return {};
  }
  Work all_gather_raw(const void* send, void* recv, const std::vector<int64_t>& counts, DType dtype,
                      Memory memory) override {
    BINDERY_CHECK(counts.size() == 1 && counts[0] >= 0, DistError, where("all_gather"),
                  ": need one non-negative count, got ", counts.size());
    copy(send, recv, counts[0], dtype, memory, "all_gather");
    return {};
  }
  Work reduce_scatter_raw(const void* send, void* recv, int64_t count, DType dtype, ReduceOp,
                          Memory memory) override {
    copy(send, recv, count, dtype, memory, "reduce_scatter");
    return {};
  }
  Work broadcast_raw(void*, int64_t count, DType, int root, Memory) override {
    check_count("broadcast", count);
    check_peer("broadcast", root, true);
    return {};
  }
  Work barrier() override { return {}; }
  Work send_raw(const void*, int64_t, DType, int dst, int, Memory) override {
    check_peer("send", dst, false);  // always throws: a group of one has no other rank
    return {};
  }
  Work recv_raw(void*, int64_t, DType, int src, int, Memory) override {
    check_peer("recv", src, false);
    return {};
  }

 private:
  void check_count(const char* op, int64_t count) const {
    BINDERY_CHECK(count >= 0, DistError, where(op), ": negative element count ", count);
  }
  void copy(const void* send, void* recv, int64_t count, DType dtype, Memory memory, const char* op) const {
    check_count(op, count);
    if (send == recv || count == 0) return;
    BINDERY_CHECK(memory == Memory::kHost, DistError, where(op),
                  ": the single-process group copies device buffers only through the Tensor methods");
    std::memcpy(recv, send, static_cast<size_t>(count) * dtype_size(dtype));
  }
  GroupOptions options_;
};

}  // namespace bindery::dist
