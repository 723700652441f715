// Tests of optim::AdamW and optim::Sgd against independent scalar re-implementations of
// torch.optim.AdamW / torch.optim.SGD written out from PyTorch's documented formulas. Every case runs
// on each backend, so all of them live in test_optimizers_bodies.hpp (test_cuda includes it too).
#include "test_util.hpp"
#include "test_optimizers_bodies.hpp"
