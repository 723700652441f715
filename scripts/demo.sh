#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on its built-in default data:
# examples/02_imagebind_digits trains an ImageBind in C++ — stage 1 aligns images with captions,
# stage 2 binds audio, depth, thermal and IMU to the frozen image space — and measures each bound
# modality's emergent zero-shot accuracy against text prompts. It prints the results table and names
# the folder with the report, the plots and the trained model.
#   scripts/demo.sh                       # built-in six-sensor digits, both cores
#   scripts/demo.sh --out my-run          # choose the output folder
#   scripts/demo.sh --mnist DIR --fsdd DIR  # real data (see the README)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBINDERY_BUILD_EXAMPLES=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)" --target 02_imagebind_digits
cd "$root"
# Idle OpenMP threads sleep instead of spinning: on a shared or busy machine spinning threads steal
# the cores the training needs.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
"$build/examples/02_imagebind_digits" --threads "$(nproc)" "$@"
