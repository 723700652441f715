// bindery/nn/all.hpp — every module header (filled in as modules land).
#pragma once
