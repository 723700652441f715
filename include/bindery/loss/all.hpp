// bindery/loss/all.hpp — every loss header.
#pragma once
