// bindery/eval/all.hpp — evaluation of joint embedding spaces: zero-shot, retrieval, arithmetic,
// PCA, and SVG plots.
#pragma once

#include "bindery/eval/pca.hpp"
#include "bindery/eval/plot.hpp"
#include "bindery/eval/zero_shot.hpp"
