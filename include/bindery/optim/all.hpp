// bindery/optim/all.hpp — every optimizer header.
#pragma once

#include "bindery/optim/adamw.hpp"
#include "bindery/optim/clip.hpp"
#include "bindery/optim/grad_scaler.hpp"
#include "bindery/optim/optimizer.hpp"
#include "bindery/optim/param_group.hpp"
#include "bindery/optim/schedule.hpp"
#include "bindery/optim/sgd.hpp"
