#!/usr/bin/env bash
# run.deterministic on a GPU machine (issue 28, docs/training.md#determinism): trains one config
# for a few steps twice with run.deterministic = true and twice with false, and prints whether
# each pair's step losses and gradient norms are bitwise equal and the median step time of each
# attention mode, deterministic against not. Logs and metrics under $OUT/determinism/.
#
#   OUT=$OUT scripts/gpu-determinism.sh [--config FILE] [--set key=value ...]
# (after a build into build-gpu/, e.g. STEPS=build BUILD_TARGETS=lighthouse scripts/gpu-check.sh)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}/determinism
L=${BUILD_DIR:-build-gpu}/src/lighthouse
STEPS=${DET_STEPS:-16}
mkdir -p "$OUT"
common=(--set "train.steps=$STEPS" --set "train.stage1_steps=$((STEPS / 2))" --set val.every=0
        --set checkpoint.every=0 --set checkpoint.keep=1 --set log.every=1 --set log.progress=false)
for run in det-a det-b nondet-a nondet-b; do
  det=false; [[ $run == det-* ]] && det=true
  rm -rf "/tmp/lighthouse-determinism/$run"
  "$L" train "$@" "${common[@]}" --set "run.deterministic=$det" \
    --set "run.dir=/tmp/lighthouse-determinism/$run" > "$OUT/$run.log" 2>&1 ||
    { echo "determinism: $run failed:"; tail -5 "$OUT/$run.log"; exit 1; }
  cp "/tmp/lighthouse-determinism/$run/metrics.jsonl" "$OUT/$run.jsonl"
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def steps(name):
    return [j for j in map(json.loads, open(f"{out}/{name}.jsonl")) if j.get("type") == "step"]
runs = {n: steps(n) for n in ("det-a", "det-b", "nondet-a", "nondet-b")}
for a, b in (("det-a", "det-b"), ("nondet-a", "nondet-b")):
    same = [x["loss"] == y["loss"] and x["grad_norm"] == y["grad_norm"]
            for x, y in zip(runs[a], runs[b])]
    diff = max(abs(x["loss"] - y["loss"]) for x, y in zip(runs[a], runs[b]))
    print(f"{a[:-2]:7s}: {sum(same)}/{len(same)} steps bitwise equal (loss and grad norm), "
          f"largest loss difference {diff:.3g}")
print("| mode | deterministic (s/step) | default (s/step) | cost |\n|---|---|---|---|")
for mode in ("lighthouse", "dense"):
    med = {}
    for kind in ("det", "nondet"):
        t = [s["step_time_s"] for r in (f"{kind}-a", f"{kind}-b") for s in runs[r][2:]
             if s["attention"] == mode]
        med[kind] = statistics.median(t) if t else float("nan")
    print(f"| {mode} | {med['det']:.4f} | {med['nondet']:.4f} | {med['det'] / med['nondet']:.3f}x |")
PY
