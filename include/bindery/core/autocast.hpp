// bindery/core/autocast.hpp — autocast: float GEMMs on 16-bit operands, float everything else.
//
//   {
//     bindery::Autocast autocast(bindery::Precision::kBFloat16);
//     loss = model.forward(x) ...;       // the Linear, matmul and conv GEMMs multiply bf16 operands
//   }
//   backward(loss);                       // each op's backward uses the precision of its forward
//
// Inside an Autocast scope, every float GEMM that an op issues (linear, matmul, conv2d/3d) rounds
// its two operands to bfloat16 or float16 and accumulates in float: on Cuda that is the tensor-core
// GEMM on 16-bit copies; on Cpu the same arithmetic on float copies (backend/gemm_mixed.hpp).
// Parameters, activations and gradients stay float, so the parameters are their own fp32 master
// weights and the optimizers need no change. What PyTorch's autocast also does and this one does
// not: outputs stay float (no memory saving on activations) and the fused attention kernel keeps
// fp32 (its Q·Kᵀ and P·V are not rounded). double tensors ignore autocast, as in PyTorch.
// Float16 GEMMs need loss scaling in training (optim::GradScaler): small gradients underflow float16.
//
// The precision is thread-local. The autograd engine records it in each graph node and restores it
// while that node's backward runs, so backward() may be called after the scope has closed.
#pragma once

namespace bindery {

/// Arithmetic precision of autocast GEMMs.
enum class Precision { kFloat32, kBFloat16, kFloat16 };

inline const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::kBFloat16:
      return "bf16";
    case Precision::kFloat16:
      return "fp16";
    case Precision::kFloat32:
      break;
  }
  return "fp32";
}

namespace detail {
inline Precision& autocast_state() {
  thread_local Precision precision = Precision::kFloat32;
  return precision;
}
}  // namespace detail

/// The precision of float GEMMs on this thread now (kFloat32 outside any Autocast scope).
inline Precision autocast_precision() {
  return detail::autocast_state();
}

/// RAII scope: float GEMMs inside it run at `precision` (kFloat32 turns autocast off inside an
/// enclosing scope). Scopes nest; each restores the previous precision.
class Autocast {
 public:
  explicit Autocast(Precision precision = Precision::kBFloat16) : previous_(detail::autocast_state()) {
    detail::autocast_state() = precision;
  }
  ~Autocast() { detail::autocast_state() = previous_; }
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  Precision previous_;
};

}  // namespace bindery
