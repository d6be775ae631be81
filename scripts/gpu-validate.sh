#!/usr/bin/env bash
# One-command GPU validation: the `gpu` and `trt` tests, then a short sweep on every GPU runner that
# is available, written under profiles/. Installs nothing (GPU machines may be offline): it uses the
# torch, onnx, onnxruntime and tensorrt already installed, and says which runners it could not try
# and why.
#
#   scripts/gpu-validate.sh [--device cuda:N] [--runners LIST] [--out-dir DIR] [--aa] [--dry-run]
#     --runners  comma-separated runners to try (default: torch:cuda,ort:cuda,ort:tensorrt,trt)
#     --out-dir  where the profile goes (default: profiles)
#     --aa       measure the sweep again, compare the runs and record the A/A drift in the profile
#                (`hwprofile check --calibrate`): this GPU's thresholds for `hwprofile check` (docs/ci.md)
#     --dry-run  only say what would run
#   PYTHON=/path/to/python picks the interpreter (default: .venv/bin/python, else python3).
#
# Exit: 0 all good, 1 a test or a runner failed, 2 bad options, 3 no usable GPU or hwprofile missing.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVICE=cuda:0 DRY=0 AA=0 OUT_DIR="$ROOT/profiles"
GPU_RUNNERS="torch:cuda ort:cuda ort:tensorrt trt"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=${2:?--device needs a value, e.g. cuda:0}; shift 2 ;;
    --runners) GPU_RUNNERS=$(echo "${2:?--runners needs a list}" | tr ',' ' '); shift 2 ;;
    --out-dir) OUT_DIR=${2:?--out-dir needs a folder}; [[ $OUT_DIR = /* ]] || OUT_DIR="$PWD/$OUT_DIR"; shift 2 ;;
    --aa) AA=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-validate: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
if ! "$PY" -c "import hwprofile" 2>/dev/null; then
  echo "gpu-validate: hwprofile is not importable with $PY; this script installs nothing (set PYTHON=...)" >&2
  exit 3
fi
cd "$ROOT"
MODELS=EfficientNet-B0,RegNetX-400MF

echo "== devices and runners ($PY)"
"$PY" -m hwprofile devices || true

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
from hwprofile.measure import device_id, fingerprint
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

if [ -n "$NODEVICE" ] || [ ${#AVAILABLE[@]} -eq 0 ]; then
  echo "== nothing to validate on $DEVICE${NODEVICE:+: $NODEVICE}"
  report_not_tried
  exit 3
fi
RUNNERS=$(IFS=,; echo "${AVAILABLE[*]}")
mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/${DEVICE_ID}__$(echo "$RUNNERS" | tr ':,' '--')__fp32__infer.json"
[ -e "$OUT" ] && OUT="${OUT%.json}-$(date -u +%Y%m%dT%H%M%SZ).json"  # never overwrite a saved profile
SWEEP=(--device "$DEVICE" --runners "$RUNNERS" --models "$MODELS" --strategies dWr --scales 1,2
       --batch-sizes 1,8,32 --repeats 3 --quiet)

echo "== plan on $DEVICE ($DEVICE_ID): runners $RUNNERS -> $OUT"
report_not_tried
if [ "$DRY" = 1 ]; then
  echo "(dry run: would run the gpu/trt tests and: hwprofile run ${SWEEP[*]} --out $OUT)"
  exit 0
fi

echo "== gpu and trt tests"
"$PY" -m pytest -q -rs -m "gpu or trt" tests
TESTS_RC=$?

echo "== sweep"
"$PY" -m hwprofile run "${SWEEP[@]}" --out "$OUT" --format csv > /dev/null
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

echo "== summary"
echo "tests: $([ $TESTS_RC = 0 ] && echo passed || echo "FAILED (exit $TESTS_RC)")"
echo "profile: $OUT (hwprofile run exit $RUN_RC)"
report_not_tried
if [ $RUN_RC = 3 ] && [ ! -f "$OUT" ]; then exit 3; fi
[ $TESTS_RC = 0 ] && [ $RUN_RC = 0 ] && [ $AA_RC = 0 ] && exit 0
exit 1
