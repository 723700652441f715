// optim::GradScaler (dynamic loss scaling) and mixed-precision training with Autocast. Every case runs
// on each backend, so all of them live in test_grad_scaler_bodies.hpp (test_cuda includes it too).
#include "test_util.hpp"
#include "test_grad_scaler_bodies.hpp"
