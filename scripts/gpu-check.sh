#!/usr/bin/env bash
# One call on a GPU machine: build (Release, no ccache), run the gpu-labelled tests (the
# test_cuda binary, in one process), run the CUDA benchmark sweep, keep logs, JSON and
# Markdown under $OUT, and print a short table last.
#
#   STEPS=build,test,bench   what to do (default all three; add micro for the data stages
#                            alone at MICRO_N, scripts/gpu-stage-micro.py; variants for the
#                            kernel tuning harness at each of VARIANT_NS, default 64K,128K,512K)
#   BENCH_NS=...  BENCH_KS=...   sequence lengths and k per length (default: issue 3's sweep)
#   BENCH_REPEATS=10  BENCH_BUDGET=8   repeats per case, seconds of timed runs per case
#   BENCH_SCORER=dilated  BENCH_DILATION=4   also time the dilated scorer next to norm
#   GTEST_FILTER=...         a subset of the tests
#   BUILD_TARGETS=...        ninja targets of the build step (default: lighthouse test_cuda
#                            lighthouse_kernel_variants)
# Build dependencies missing on the machine (CLI11, nlohmann-json, toml++, GoogleTest,
# pkg-config) come as Debian packages in .deps/ (carried; see docs/gpu.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
STEPS=${STEPS:-build,test,bench}
BUILD=${BUILD_DIR:-build-gpu}
BENCH_NS=${BENCH_NS:-32768,65536,131072,262144,524288,1048576}
BENCH_KS=${BENCH_KS:-2048,2048,2048,2048,2048,4096}
VARIANT_NS=${VARIANT_NS:-65536,131072,524288}
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
  > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

if [ -d .deps ]; then
  DEPS=/tmp/lighthouse-deps
  mkdir -p "$DEPS"
  for f in .deps/*.deb; do dpkg -x "$f" "$DEPS"; done
  libz=$(ls /lib/x86_64-linux-gnu/libz.so.1* /usr/lib/x86_64-linux-gnu/libz.so.1* 2>/dev/null | head -1)
  [ -n "$libz" ] && ln -sf "$libz" "$DEPS/usr/lib/x86_64-linux-gnu/libz.so"
  export PATH="$DEPS/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_LIBDIR="$DEPS/usr/lib/x86_64-linux-gnu/pkgconfig:$DEPS/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$DEPS"
  PREFIX_DEPS="$DEPS/usr;"
fi

if [[ $STEPS == *build* ]]; then
  TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  start=$(date +%s)
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="${PREFIX_DEPS:-}$TORCH_PREFIX" -DPython3_EXECUTABLE="$(command -v python3)" \
    -DCCACHE_PROGRAM=CCACHE_PROGRAM-NOTFOUND -DLIGHTHOUSE_CUDA=ON > "$OUT/configure.log" 2>&1 \
    || { tail -30 "$OUT/configure.log"; exit 1; }
  ninja -C "$BUILD" -j16 ${BUILD_TARGETS:-lighthouse test_cuda lighthouse_kernel_variants} > "$OUT/build.log" 2>&1 \
    || { grep -v "^ptxas" "$OUT/build.log" | grep -B2 -A8 "error" | head -60; exit 1; }
  echo "build: $(( $(date +%s) - start )) s"
fi

if [[ $STEPS == *test* ]]; then
  "$BUILD/tests/test_cuda" --gtest_filter="${GTEST_FILTER:-*}" \
    --gtest_output="xml:$OUT/test_cuda.xml" > "$OUT/tests.log" 2>&1 || status=1
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |\[determinism\]|Failure|Expected|Which is|rel_err|^  Actual" \
    "$OUT/tests.log" | head -60
  grep -E "tests? ran|^\[  PASSED|^\[  FAILED" "$OUT/tests.log" | tail -3
fi

if [[ $STEPS == *micro* ]]; then
  python3 scripts/gpu-stage-micro.py "$BUILD/src/liblighthouse_ops.so" "${MICRO_N:-524288}" \
    > "$OUT/micro.txt" 2>&1 || status=1
  cat "$OUT/micro.txt"
fi

if [[ $STEPS == *variants* ]]; then
  for stage in pool_score scatter gather_backward; do
    for n in ${VARIANT_NS//,/ }; do
      "$BUILD/src/lighthouse_kernel_variants" --stage "$stage" --n "$n" \
        --json "$OUT/variants-$stage-$n.json" 2>&1 | tee -a "$OUT/variants.txt" || status=1
    done
  done
fi

if [[ $STEPS == *bench* ]]; then
  "$BUILD/src/lighthouse" bench --device cuda --dtype bfloat16 --batch 1 --heads 8 --kv-heads 8 \
    --dim 128 --set lighthouse.levels=3 --set lighthouse.pool=4 --set lighthouse.tile_topk=128 \
    --seq-lens "$BENCH_NS" --topks "$BENCH_KS" \
    --warmup 1 --repeats "${BENCH_REPEATS:-10}" --case-budget "${BENCH_BUDGET:-8}" \
    --set lighthouse.scorer="${BENCH_SCORER:-norm}" \
    --set lighthouse.dilation="${BENCH_DILATION:-4}" \
    --json "$OUT/bench.json" --markdown "$OUT/bench.md" > "$OUT/bench.log" 2>&1 || status=1
  # The short table: everything after the stage tables.
  awk '/^ +N +k +S/{p=1} p' "$OUT/bench.log"
  grep -E "verify|error|FAILED" "$OUT/bench.log" | head -20
fi
exit $status
