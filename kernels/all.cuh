// kernels/all.cuh — every CUDA op kernel: the Cuda specializations of the ops' kernel structs.
//
// Included by <bindery/cuda.hpp> (the CUDA umbrella) after bindery.hpp and backend/cuda.hpp, so
// each specialization is declared before any op is instantiated for Cuda. One file per op header
// that has a `template <class B> struct ...Kernel;` with a Cpu specialization.
#pragma once

#include "attention.cuh"
#include "conv.cuh"
#include "cross_entropy.cuh"
#include "index.cuh"
#include "layer_norm.cuh"
#include "normalize.cuh"
#include "softmax.cuh"
#include "symmetric_cross_entropy.cuh"
