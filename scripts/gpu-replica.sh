#!/usr/bin/env bash
# Quality replicas on a GPU machine (issue 8 and 28, docs/gpu.md): build if needed, run
# `lighthouse compare` into a scratch folder on the machine, and bring back under $OUT only
# what is small: NAME.tar.gz with report.json/md, the console log, every eval JSON and every
# run's metrics.jsonl, config.json/toml and eval.json (checkpoints stay on the machine), plus
# NAME-report.md. An unpacked run folder serves a later session's `compare --dense-run` without
# its checkpoints (compare reuses its eval.json; docs/eval.md).
#
#   OUT=$OUT scripts/gpu-replica.sh NAME --config configs/replica-64k.toml [compare flags...]
#   OUT=$OUT DETACH=1 scripts/gpu-replica.sh NAME ...   start it in its own session and return
#   OUT=$OUT scripts/gpu-replica.sh --collect NAME [WAIT_S]   wait up to WAIT_S seconds (default
#                                                            0) for a detached one, then pack
#                                                            what it has written so far
# A detached comparison outlives the call that started it while the machine stays warm (the
# next call within the machine's idle window), so a comparison longer than one call's limit
# runs as one start and several --collect calls back to back.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
BUILD=${BUILD_DIR:-build-gpu}
ROOT=/tmp/lighthouse-replica
mkdir -p "$OUT"

pack() {  # NAME: the small files of $ROOT/NAME into $OUT/NAME.tar.gz
  local name=$1 work=$ROOT/$1
  (cd "$work" && find . \( -name report.json -o -name report.md -o -name compare.log \
      -o -name 'eval-*.json' -o -name eval.json -o -name metrics.jsonl -o -name config.toml \
      -o -name config.json -o -name rc \) \
      -print0 | tar --null -czf "$OUT/$name.tar.gz" -T -)
  [ -f "$work/report.md" ] && cp "$work/report.md" "$OUT/$name-report.md"
  echo "packed $OUT/$name.tar.gz ($(stat -c %s "$OUT/$name.tar.gz") bytes)"
}

if [ "${1:-}" = "--collect" ]; then
  name=${2:?usage: gpu-replica.sh --collect NAME [WAIT_S]}
  wait_s=${3:-0}
  work=$ROOT/$name
  [ -d "$work" ] || { echo "gpu-replica: no comparison $name on this machine"; exit 1; }
  for ((t = 0; t < wait_s; t += 5)); do [ -f "$work/rc" ] && break; sleep 5; done
  if [ -f "$work/rc" ]; then echo "compare $name: finished, rc $(cat "$work/rc")"
  else echo "compare $name: still running"; fi
  pack "$name"
  grep -vE "^\s*$" "$work/compare.log" | grep -vE "^\[(dense|lighthouse|probe)\] step " | tail -30
  exit 0
fi

name=${1:?usage: gpu-replica.sh NAME [lighthouse compare flags...]}
shift
STEPS=build OUT="/tmp/$name-build" BUILD_TARGETS=lighthouse scripts/gpu-check.sh > /dev/null || {
  tail -40 "/tmp/$name-build/build.log"; exit 1; }
work=$ROOT/$name
rm -rf "$work"
mkdir -p "$work"
# The GPU machine has no PLplot: compare writes its JSON and Markdown, then stops with an error
# naming the missing plotting packages (the figures are drawn where PLplot is installed).
run() {
  local start=$(date +%s)
  "$BUILD/src/lighthouse" compare --out "$work" "$@" > "$work/compare.log" 2>&1
  local rc=$?
  echo "compare $name: rc $rc, $(( $(date +%s) - start )) s" >> "$work/compare.log"
  echo $rc > "$work/rc"
}
if [ "${DETACH:-0}" = 1 ]; then
  export -f run
  export BUILD work name
  setsid bash -c 'run "$@"' run "$@" < /dev/null > /dev/null 2>&1 &
  echo "compare $name: started in the background (collect with --collect $name WAIT_S)"
  exit 0
fi
run "$@"
echo "compare $name: rc $(cat "$work/rc")"
pack "$name"
grep -vE "^\s*$" "$work/compare.log" | grep -vE "^\[(dense|lighthouse|probe)\] step " | tail -25
