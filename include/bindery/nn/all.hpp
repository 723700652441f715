// bindery/nn/all.hpp — every module header.
#pragma once

#include "bindery/nn/activation.hpp"
#include "bindery/nn/attention.hpp"
#include "bindery/nn/block.hpp"
#include "bindery/nn/conv.hpp"
#include "bindery/nn/embedding.hpp"
#include "bindery/nn/init.hpp"
#include "bindery/nn/layer_norm.hpp"
#include "bindery/nn/linear.hpp"
#include "bindery/nn/mlp.hpp"
#include "bindery/nn/module.hpp"
#include "bindery/nn/patch_embed.hpp"
#include "bindery/nn/quantize.hpp"
#include "bindery/nn/sequential.hpp"
#include "bindery/nn/transformer.hpp"
