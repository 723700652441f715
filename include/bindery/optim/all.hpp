// bindery/optim/all.hpp — every optimizer header.
#pragma once
