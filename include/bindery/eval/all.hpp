// bindery/eval/all.hpp — evaluation of joint embedding spaces: zero-shot, retrieval, arithmetic,
// PCA, and SVG plots (the plots live in bindery/plot/ and are included here as before).
#pragma once

#include "bindery/eval/detection.hpp"
#include "bindery/eval/pca.hpp"
#include "bindery/eval/zero_shot.hpp"
#include "bindery/plot/all.hpp"
