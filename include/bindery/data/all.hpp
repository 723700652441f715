// bindery/data/all.hpp — every input pipeline: raw files to model inputs for the six modalities.
// Not part of bindery/bindery.hpp: it compiles stb's decoders and needs zlib and utf8proc.
#pragma once

#include "bindery/data/audio.hpp"
#include "bindery/data/depth.hpp"
#include "bindery/data/fbank.hpp"
#include "bindery/data/fsdd.hpp"
#include "bindery/data/image.hpp"
#include "bindery/data/imu.hpp"
#include "bindery/data/mnist.hpp"
#include "bindery/data/resample.hpp"
#include "bindery/data/resize.hpp"
#include "bindery/data/synth_digits.hpp"
#include "bindery/data/thermal.hpp"
#include "bindery/data/tokenizer.hpp"
#include "bindery/data/video.hpp"
#include "bindery/data/wav.hpp"
