// bindery/models/imagebind/imagebind.hpp — the ImageBind model: configs, preprocessors, heads,
// ModalityEncoder and ImageBindModel (see model.hpp for a usage example).
#pragma once

#include "bindery/models/imagebind/config.hpp"
#include "bindery/models/imagebind/encoder.hpp"
#include "bindery/models/imagebind/heads.hpp"
#include "bindery/models/imagebind/model.hpp"
#include "bindery/models/imagebind/preprocessors.hpp"
