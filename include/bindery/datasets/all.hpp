// bindery/datasets/all.hpp — the datasets: MNIST and any IDX file, the Free Spoken Digit Dataset,
// and the synthetic "digit seen by six sensors" generator.
// Built on bindery/data/ (decoders, resampling, fbank). The namespaces did not move with the files:
// bindery::data (MNIST, FSDD) and bindery::data::synth (the generator), as before.
#pragma once

#include "bindery/datasets/fsdd.hpp"
#include "bindery/datasets/mnist.hpp"
#include "bindery/datasets/synth_digits.hpp"
