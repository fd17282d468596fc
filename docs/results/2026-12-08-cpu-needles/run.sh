#!/usr/bin/env bash
# The CPU search of docs/results/2026-12-08-cpu-needles: the tiny config, dense from scratch, on
# real text with data.needles at 2K context; every checkpoint scored with `eval --retrieval`.
#   docs/results/2026-12-08-cpu-needles/run.sh NAME STEPS [--set key=value ...]
# writes runs/needles-NAME/ and docs/results/2026-12-08-cpu-needles/NAME-step-S.json.
set -euo pipefail
cd "$(dirname "$0")/../../.."
name=$1 steps=$2
shift 2
out=docs/results/2026-12-08-cpu-needles
bin=${LIGHTHOUSE:-build/src/lighthouse}
run=runs/needles-$name
"$bin" train --set run.dir="$run" --set data.source=data/linux-doc.jsonl.gz \
  --set train.attention=dense --set train.steps="$steps" --set train.stage1_steps=0 \
  --set checkpoint.every=$((steps / 5)) --set checkpoint.keep=5 --set val.every=$((steps / 5)) \
  --set log.progress=false --set log.every=50 "$@"
for ck in "$run"/checkpoints/step-*.ckpt; do
  s=$(basename "$ck" .ckpt)
  "$bin" eval --checkpoint "$ck" --retrieval --retrieval-sequences 64 \
    --retrieval-buckets 128,512,1K --retrieval-window 128 --device cpu \
    --json "$out/$name-${s}.json" | tail -n 12
done
