#!/usr/bin/env bash
# Installs the Debian packages bindery builds with, when missing (as root, or through sudo).
# Usage: scripts/install-deps.sh [extra packages...]
set -euo pipefail
# FFmpeg's development packages are optional for the library (CMake BINDERY_FFMPEG=AUTO: video files
# decode when found); installed here so that CI builds and tests the video-file path. OpenMPI
# likewise (BINDERY_MPI=AUTO): the distributed tests run under mpirun on this machine.
packages=(build-essential cmake ccache libeigen3-dev catch2 libbenchmark-dev libopenblas-dev
          libopenmpi-dev openmpi-bin nlohmann-json3-dev xtensor-dev libstb-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev libutf8proc-dev libcli11-dev python3
          pkg-config libavformat-dev libavcodec-dev libswscale-dev libavutil-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all ${#packages[@]} packages present"
  exit 0
fi
echo "[deps] installing: ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "[deps] need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
