// bindery/loss/all.hpp — every loss header.
#pragma once

#include "bindery/loss/info_nce.hpp"
