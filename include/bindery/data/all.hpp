// bindery/data/all.hpp — every input pipeline: raw files to model inputs for the six modalities.
// Not part of bindery/bindery.hpp: it compiles stb's decoders and needs zlib and utf8proc.
// The text stack lives in data/text/; the datasets moved to bindery/datasets/ and are still included
// here, so code that relied on this header for MNIST, FSDD or the digit generator keeps compiling.
#pragma once

#include "bindery/data/audio.hpp"
#include "bindery/data/depth.hpp"
#include "bindery/data/fbank.hpp"
#include "bindery/data/image.hpp"
#include "bindery/data/imu.hpp"
#include "bindery/data/resample.hpp"
#include "bindery/data/resize.hpp"
#include "bindery/data/text/tokenizer.hpp"
#include "bindery/data/thermal.hpp"
#include "bindery/data/video.hpp"
#include "bindery/data/wav.hpp"
#include "bindery/datasets/all.hpp"
