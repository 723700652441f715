// Tests of loss::info_nce, info_nce_normalized, LogitScale, InfoNCE and retrieval_accuracy. Every case
// runs on each backend, so all of them live in test_info_nce_bodies.hpp (test_cuda includes it too).
#include "test_util.hpp"
#include "test_info_nce_bodies.hpp"
