// bindery/plot/all.hpp — the charts: line, scatter, bar and heatmap plots as self-contained SVG
// text, on a small SVG document builder. Needs only core/ and io/.
// The namespace did not move with the files: everything here is still in bindery::eval.
#pragma once

#include "bindery/plot/plot.hpp"
