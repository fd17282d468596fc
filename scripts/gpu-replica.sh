#!/usr/bin/env bash
# One quality replica on a GPU machine (issue 8, docs/gpu.md): build if needed, run
# `lighthouse compare` into a scratch folder, and copy back under $OUT/NAME only what is small —
# report.json/md, the eval JSONs, each run's metrics.jsonl and resolved config, the console log.
# Checkpoints stay on the machine.
#
#   OUT=$OUT scripts/gpu-replica.sh NAME --config configs/replica-64k.toml [compare flags...]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
name=${1:?usage: gpu-replica.sh NAME [lighthouse compare flags...]}
shift
BUILD=${BUILD_DIR:-build-gpu}
STEPS=build OUT="/tmp/$name-build" scripts/gpu-check.sh > /dev/null || {
  tail -40 "/tmp/$name-build/build.log"; exit 1; }
work=/tmp/lighthouse-replica/$name
rm -rf "$work"
mkdir -p "$OUT/$name"
start=$(date +%s)
# The GPU machine has no PLplot: compare writes its JSON and Markdown, then stops with an error
# naming the missing plotting packages (the figures are drawn where PLplot is installed).
"$BUILD/src/lighthouse" compare --out "$work" "$@" > "$OUT/$name/compare.log" 2>&1
rc=$?
echo "compare $name: rc $rc, $(( $(date +%s) - start )) s"
for f in report.json report.md eval-dense.json eval-lighthouse.json; do
  [ -f "$work/$f" ] && cp "$work/$f" "$OUT/$name/"
done
for run in dense lighthouse; do
  for f in metrics.jsonl; do
    src=$(ls "$work/$run"/*/"$f" "$work/$run/$f" 2>/dev/null | head -1)
    [ -n "$src" ] && mkdir -p "$OUT/$name/$run" && cp "$src" "$OUT/$name/$run/"
  done
done
grep -vE "^\s*$" "$OUT/$name/compare.log" | tail -25
