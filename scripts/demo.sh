#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on its built-in default data.
# Today that is examples/01_two_towers: two transformer encoders trained with InfoNCE on generated
# paired data, printing the loss going down and held-out retrieval accuracy going up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBINDERY_BUILD_EXAMPLES=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)" --target 01_two_towers
"$build/examples/01_two_towers" "$@"
