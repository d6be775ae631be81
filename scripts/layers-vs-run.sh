#!/usr/bin/env bash
# hwprofile layers against hwprofile run, per CPU runner (docs/layers.md, "Example from the development VM"):
# for each runner, `hwprofile run` of EfficientNet-B0 at batch 1, then `hwprofile layers` of the same model,
# runner and batch; prints one markdown row each: the run's median, end_to_end_ms and their difference, the
# layer sum's share of end_to_end_ms, the depthwise convolutions that are memory-bound, the ridge, the
# memory-bound share of layer time and the profiler overhead. Run it alone on a quiet machine.
#   scripts/layers-vs-run.sh [RUNNER ...]      (default: ort:cpu torch:cpu; uses $PYTHON, default: python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || set -- ort:cpu torch:cpu
echo "| runner | run median | end_to_end_ms | difference | layer sum / end-to-end | depthwise memory-bound | ridge | memory-bound share | profiler overhead | clean blocks |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for runner in "$@"; do
  "$PY" -m hwprofile run --device cpu --runners "$runner" --models EfficientNet-B0 --strategies d --scales 1 \
      --batch-sizes 1 --out "$tmp/run-${runner//:/-}.json" --quiet > /dev/null 2>&1
  "$PY" -m hwprofile layers EfficientNet-B0 --runner "$runner" --batch 1 --device cpu --json \
      > "$tmp/layers-${runner//:/-}.json"
  "$PY" - "$runner" "$tmp" <<'PY'
import json, sys
runner, tmp = sys.argv[1:3]
name = runner.replace(":", "-")
rec = json.load(open(f"{tmp}/run-{name}.json"))["records"][0]
d = json.load(open(f"{tmp}/layers-{name}.json"))
med, e2e = rec["latency"]["median_ms"], d["end_to_end_ms"]
dw = [r for r in d["rows"] if r.get("depthwise")]
blocks = ", ".join(f"{b:.1f}" for b in d.get("clean_blocks_ms") or [])
print(f"| {runner} | {med:.1f} ms ({rec.get('quality')}) | {e2e:.1f} ms | {e2e / med - 1:+.1%} | "
      f"{d['layer_sum_ms'] / e2e:.0%} | {sum(r['bound'] == 'memory' for r in dw)} of {len(dw)} | "
      f"{d['peaks']['ridge']:.1f} FLOP/B | {d['memory_bound_time_fraction']:.0%} | {d['profiler_overhead']:+.0%} | "
      f"{blocks} ms |")
PY
done
