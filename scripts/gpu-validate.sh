#!/usr/bin/env bash
# One-command GPU validation: the `gpu` and `trt` tests, then a short sweep on every GPU runner that
# is available. Installs nothing (GPU machines may be offline): it uses the torch, onnx, onnxruntime
# and tensorrt already installed, runs hwprofile from this source checkout (`python -m hwprofile` from
# the repository root; nothing needs installing), and says which runners it could not try and why.
#
#   scripts/gpu-validate.sh [--quick] [--device cuda:N] [--runners LIST] [--out-dir DIR] [--aa] [--dry-run]
#     --quick    at most ~4 minutes on one GPU: devices --peak, the gpu/trt tests of the runners and the
#                engine builder, and a sweep of EfficientNet-B0 dWr at s 1 and 2, batch 1 and 32 (each
#                step under a hard time limit; records the sweep's budget does not reach are 'skipped'),
#                all written into DIR: devices.json, plan.json, tests.txt, sweep.json, validate.log
#     --runners  comma-separated runners to try (default: torch:cuda,ort:cuda,ort:tensorrt,trt)
#     --out-dir  where the results go (default: profiles; with --quick runs/gpu-validate-<time>)
#     --aa       measure the sweep again, compare the runs and record the A/A drift in the profile
#                (`hwprofile check --calibrate`): this GPU's thresholds for `hwprofile check` (docs/ci.md)
#     --dry-run  only say what would run (and print the sweep's plan, which needs no GPU)
#   PYTHON=/path/to/python picks the interpreter (default: .venv/bin/python, else python3).
#
# Exit: 0 all good, 1 a test or a runner failed, 2 bad options, 3 no usable GPU or hwprofile missing.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVICE=cuda:0 DRY=0 AA=0 QUICK=0 OUT_DIR=""
GPU_RUNNERS="torch:cuda ort:cuda ort:tensorrt trt"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=${2:?--device needs a value, e.g. cuda:0}; shift 2 ;;
    --runners) GPU_RUNNERS=$(echo "${2:?--runners needs a list}" | tr ',' ' '); shift 2 ;;
    --out-dir) OUT_DIR=${2:?--out-dir needs a folder}; [[ $OUT_DIR = /* ]] || OUT_DIR="$PWD/$OUT_DIR"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --aa) AA=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-validate: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$OUT_DIR" ]; then
  if [ "$QUICK" = 1 ]; then OUT_DIR="$ROOT/runs/gpu-validate-$(date -u +%Y%m%dT%H%M%SZ)"; else OUT_DIR="$ROOT/profiles"; fi
fi
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
# From the repository root, `python -m hwprofile` imports this checkout; PYTHONPATH carries it to the
# measuring and engine-building children too, so nothing needs installing.
cd "$ROOT" || exit 3
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import hwprofile" 2>/dev/null; then
  echo "gpu-validate: hwprofile is not importable with $PY from $ROOT; this script installs nothing (set PYTHON=...)" >&2
  exit 3
fi
STARTED=$SECONDS
if [ "$QUICK" = 1 ]; then
  mkdir -p "$OUT_DIR" || exit 3
  exec > >(tee -a "$OUT_DIR/validate.log") 2>&1  # everything below also goes to the log
  echo "gpu-validate --quick: $(date -u +%FT%TZ), $PY, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')"
fi

echo "== devices and runners ($PY)"
if [ "$QUICK" = 1 ] && [ "$DRY" = 0 ]; then
  timeout -k 5 25 "$PY" -m hwprofile devices --peak --json > "$OUT_DIR/devices.json" \
    || echo "devices --peak did not finish (exit $?); see $OUT_DIR/devices.json"
  "$PY" -m hwprofile devices --format markdown || true
else
  "$PY" -m hwprofile devices || true
fi

# One line per runner: OK|NO <tab> runner <tab> reason; first line DEVICE or NODEVICE.
PLAN=$("$PY" - "$DEVICE" "$GPU_RUNNERS" <<'PYEOF'
import sys
from hwprofile.errors import HwprofileError
from hwprofile.runners import availability, resolve_device

requested, runners = sys.argv[1], sys.argv[2].split()
try:
    device = resolve_device(requested)
except HwprofileError as exc:
    print(f"NODEVICE\t{requested}\t{exc}")
    for r in runners:
        ok, why = availability(r, requested)
        why = why.split(" - ", 1)[-1]
        print(f"NO\t{r}\tno usable CUDA device {requested}" + ("" if ok else f"; {why}"))
    sys.exit(0)
from hwprofile.measure.fingerprint import device_id, fingerprint
print(f"DEVICE\t{device}\t{device_id(fingerprint(device))}")
for r in runners:
    ok, why = availability(r, device)
    print(f"{'OK' if ok else 'NO'}\t{r}\t{why.split(' - ', 1)[-1]}")
PYEOF
) || { echo "gpu-validate: could not query the runners" >&2; exit 3; }

AVAILABLE=() NOT_TRIED=() DEVICE_ID="" NODEVICE=""
while IFS=$'\t' read -r kind name reason; do
  case "$kind" in
    DEVICE) DEVICE_ID=$reason ;;
    NODEVICE) NODEVICE=$reason ;;
    OK) AVAILABLE+=("$name") ;;
    NO) NOT_TRIED+=("not tried: $name - $reason") ;;
  esac
done <<< "$PLAN"

report_not_tried() {
  local line
  for line in "${NOT_TRIED[@]+"${NOT_TRIED[@]}"}"; do echo "$line"; done
}

if [ "$QUICK" = 1 ]; then
  MODELS=EfficientNet-B0 BATCHES=1,32
  SWEEP_EXTRA=(--repeats 1 --seconds-per-config 0.5 --budget 80)
else
  MODELS=EfficientNet-B0,RegNetX-400MF BATCHES=1,8,32
  SWEEP_EXTRA=(--repeats 3)
fi
if [ "$DRY" = 1 ] || [ "$QUICK" = 1 ]; then  # the plan needs no GPU: what the sweep would do, and roughly how long
  PLANNED=$( [ ${#AVAILABLE[@]} -gt 0 ] && (IFS=,; echo "${AVAILABLE[*]}") || echo "$GPU_RUNNERS" | tr ' ' ',')
  PLAN_ARGS=(run --plan --device "$DEVICE" --runners "$PLANNED" --models "$MODELS" --strategies dWr --scales 1,2
             --batch-sizes "$BATCHES" "${SWEEP_EXTRA[@]}")
  echo "== plan of the sweep (runners $PLANNED)"
  if [ "$QUICK" = 1 ]; then
    "$PY" -m hwprofile "${PLAN_ARGS[@]}" --json > "$OUT_DIR/plan.json" || echo "(no plan: exit $?)"
  fi
  "$PY" -m hwprofile "${PLAN_ARGS[@]}" || echo "(no plan: exit $?)"
fi

if [ -n "$NODEVICE" ] || [ ${#AVAILABLE[@]} -eq 0 ]; then
  echo "== nothing to validate on $DEVICE${NODEVICE:+: $NODEVICE}"
  report_not_tried
  exit 3
fi
RUNNERS=$(IFS=,; echo "${AVAILABLE[*]}")
mkdir -p "$OUT_DIR"
if [ "$QUICK" = 1 ]; then
  OUT="$OUT_DIR/sweep.json"
else
  OUT="$OUT_DIR/${DEVICE_ID}__$(echo "$RUNNERS" | tr ':,' '--')__fp32__infer.json"
fi
[ -e "$OUT" ] && OUT="${OUT%.json}-$(date -u +%Y%m%dT%H%M%SZ).json"  # never overwrite a saved profile
SWEEP=(--device "$DEVICE" --runners "$RUNNERS" --models "$MODELS" --strategies dWr --scales 1,2
       --batch-sizes "$BATCHES" "${SWEEP_EXTRA[@]}" --quiet)

echo "== on $DEVICE ($DEVICE_ID): runners $RUNNERS -> $OUT"
report_not_tried
if [ "$DRY" = 1 ]; then
  echo "(dry run: would run the gpu/trt tests and: python -m hwprofile run ${SWEEP[*]} --out $OUT)"
  exit 0
fi

echo "== gpu and trt tests"
if [ "$QUICK" = 1 ]; then
  timeout -k 5 80 "$PY" -m pytest -q -rs -m "gpu or trt" tests/runners/test_gpu.py tests/exporters/test_tensorrt.py \
    2>&1 | tee "$OUT_DIR/tests.txt"
  TESTS_RC=${PIPESTATUS[0]}
  [ "$TESTS_RC" = 124 ] && echo "gpu-validate: the tests did not finish within 80 s" | tee -a "$OUT_DIR/tests.txt"
else
  "$PY" -m pytest -q -rs -m "gpu or trt" tests
  TESTS_RC=$?
fi

echo "== sweep"
if [ "$QUICK" = 1 ]; then  # the sweep saves after every record: a hard stop leaves a valid profile
  timeout -k 10 105 "$PY" -m hwprofile run "${SWEEP[@]}" --out "$OUT" --format csv > /dev/null
else
  "$PY" -m hwprofile run "${SWEEP[@]}" --out "$OUT" --format csv > /dev/null
fi
RUN_RC=$?
if [ -f "$OUT" ]; then
  "$PY" - "$OUT" <<'PYEOF'
import sys
from hwprofile.profile import Profile

p = Profile.load(sys.argv[1])
for runner in sorted({r.runner for r in p.records}):
    recs = [r for r in p.records if r.runner == runner]
    ok = [r for r in recs if r.ok]
    why = sorted({f"{r.status}: {r.reason}" for r in recs if not r.ok})
    line = f"tried: {runner} - {len(ok)}/{len(recs)} ok"
    print(line + (f"; {why[0]}" + (f" (+{len(why) - 1} more)" if len(why) > 1 else "") if why else ""))
PYEOF
fi

AA_RC=0
if [ "$AA" = 1 ] && [ -f "$OUT" ]; then
  echo "== A/A: the same sweep again, compared with the first"
  AGAIN="runs/${DEVICE_ID}-aa-$(date -u +%Y%m%dT%H%M%SZ).json"
  "$PY" -m hwprofile run "${SWEEP[@]}" --out "$AGAIN" --format csv > /dev/null && \
    "$PY" -m hwprofile compare "$OUT" "$AGAIN" && \
    "$PY" -m hwprofile check --baseline "$OUT" "$AGAIN" --calibrate
  AA_RC=$?
fi

echo "== summary ($((SECONDS - STARTED)) s)"
echo "tests: $([ "$TESTS_RC" = 0 ] && echo passed || echo "FAILED (exit $TESTS_RC)")"
echo "profile: $OUT (hwprofile run exit $RUN_RC)"
report_not_tried
if [ "$RUN_RC" = 3 ] && [ ! -f "$OUT" ]; then exit 3; fi
[ "$TESTS_RC" = 0 ] && [ "$RUN_RC" = 0 ] && [ $AA_RC = 0 ] && exit 0
exit 1
