// bindery/io/all.hpp — the file formats: .npy, safetensors, PyTorch .pth (zip + restricted unpickler),
// and .pth -> safetensors conversion.
#pragma once

#include "bindery/io/convert.hpp"
#include "bindery/io/dtype.hpp"
#include "bindery/io/file.hpp"
#include "bindery/io/json.hpp"
#include "bindery/io/npy.hpp"
#include "bindery/io/pickle.hpp"
#include "bindery/io/pth.hpp"
#include "bindery/io/safetensors.hpp"
#include "bindery/io/zip.hpp"
