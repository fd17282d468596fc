#!/usr/bin/env bash
# Installs every dependency (Debian packages, PyPI wheels), builds lighthouse into build/ and
# installs the Python package `lighthouse` (pip, scikit-build-core, build-py/).
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
pkgs=(build-essential cmake ninja-build pkg-config ccache libgtest-dev libcli11-dev
      libtomlplusplus-dev nlohmann-json3-dev zlib1g-dev libplplot-dev plplot-driver-cairo
      fonts-dejavu-core libgloo-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import torch, numpy, pytest, transformers, accelerate, safetensors, scikit_build_core' 2>/dev/null \
   || [ "$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')" != "2.11.0" ]; then
  "$PY" -m pip install -q --disable-pip-version-check torch==2.11.0 numpy pytest transformers accelerate safetensors \
    'scikit-build-core>=1.0'
fi

# Both builds (build/ and the package's build-py/) compile the same commands: with paths made
# relative to the repository, ccache serves the second from the first.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$(command -v "$PY")" \
  -DLIGHTHOUSE_PLOTS=ON \
  ${LIGHTHOUSE_CMAKE_ARGS:-}
cmake --build build -j "$(nproc)"
CMAKE_ARGS="${LIGHTHOUSE_CMAKE_ARGS:-}" \
  "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps .
