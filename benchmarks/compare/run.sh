#!/usr/bin/env bash
# ImageBind huge encoders on the CPU, bindery vs PyTorch: builds bench_encoders when missing, runs
# compare_cpu.py (alternating repetitions in one run), writes the table, a CSV and the bar chart.
#   PYTHON=/path/to/venv/bin/python benchmarks/compare/run.sh   # the table of docs/benchmarks.md:
#       bench_encoders's default cases on 1 thread, forward at batch 1 (not vision) on 2 threads
#   benchmarks/compare/run.sh --threads 1 --reps 3 --filter 'imu|depth'      # a subset
#   benchmarks/compare/run.sh --peers pytorch,openvino --precisions fp32,bf16,int8 --filter 'encoder_fwd'
#       # OpenVINO too, and bf16 / int8 inference (bindery nn::quantize, PyTorch autocast / dynamic
#       # int8, OpenVINO bf16 hint / NNCF int8 weights): docs/benchmarks.md, "Against OpenVINO"
# Environment: BUILD_DIR (default build/), PYTHON (a python with torch and imagebind-unofficial:
# pip install torch imagebind-unofficial timm einops; for --peers openvino also openvino nncf),
# OUT_DIR (default $BUILD_DIR/encoders_vs_pytorch),
# SVG (default docs/images/encoders_vs_pytorch.svg; SVG= to skip the chart). Other arguments go to
# compare_cpu.py (--threads, --reps, --filter, --filter-2, --min-seconds, --peak, --peers,
# --precisions).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build}"
python="${PYTHON:-python3}"
out_dir="${OUT_DIR:-$build/encoders_vs_pytorch}"
svg="${SVG-$root/docs/images/encoders_vs_pytorch.svg}"
bin="$build/benchmarks/bench_encoders"
if ! "$python" -c "import importlib.util as u, torch; assert u.find_spec(\"imagebind\")" 2>/dev/null; then
  echo "run.sh: $python lacks torch or imagebind-unofficial (pip install torch imagebind-unofficial;" \
       "or set PYTHON=/path/to/venv/bin/python)" >&2
  exit 1
fi
if [ ! -x "$bin" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBINDERY_BUILD_BENCHMARKS=ON ${CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target bench_encoders >/dev/null
mkdir -p "$out_dir"
"$python" "$root/benchmarks/compare/compare_cpu.py" --bin "$bin" --csv "$out_dir/results.csv" \
  --markdown "$out_dir/results.md" "$@"
if [ -n "$svg" ]; then
  "$bin" --chart "$out_dir/results.csv" "$svg"
fi
echo "results: $out_dir/results.md, $out_dir/results.csv${svg:+, $svg}" >&2
