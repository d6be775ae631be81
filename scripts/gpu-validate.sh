#!/usr/bin/env bash
# One-command GPU validation, offline: the `gpu` and `trt` tests, then a sweep on every GPU runner that is
# available. It downloads nothing (the lent GPU machines reach no package index) and never pip-installs the
# project: hwprofile runs from this checkout (`python -m hwprofile` from the repository root; PYTHONPATH carries
# it to the children). What the machine lacks arrives as carried wheels (--wheels, --ort-gpu).
#
#   scripts/gpu-validate.sh [--quick] [--wheels DIR] [--ort-gpu DIR] [--device cuda:N] [--runners LIST]
#                           [--out-dir DIR] [--aa] [--dry-run]
#     --quick    at most 240 s: devices --peak, the gpu/trt tests of the runners and the engine builder, and a
#                sweep of EfficientNet-B0 dWr at s 1 and 2, batch 1 and 32, one process per record
#     (default)  commit-grade, at most 600 s: the same checks with longer limits, then a sweep of
#                EfficientNet-B0 w, r and dWr at s 1 and 4, batch 1 and 32, 3 processes per record, saved as
#                <device_id>__<backends>__fp32__infer.json under profiles/ (or --out-dir)
#                Every step runs under a hard time limit (--dry-run lists them); records a sweep's budget does
#                not reach are saved as 'skipped'.
#     --wheels   install the wheels scripts/gpu-wheels.sh downloaded (pydantic and its family, which the GPU
#                image lacks) with pip --no-index --no-deps --require-hashes --target, and put them on PYTHONPATH
#     --ort-gpu  reassemble, check and install onnxruntime-gpu from the chunks scripts/ort-gpu-carry.sh made
#                (ahead of the image's CPU onnxruntime on PYTHONPATH), so ort:cuda can run
#     --runners  comma-separated runners to try (default: torch:cuda,ort:cuda,ort:tensorrt,trt)
#     --out-dir  where everything goes: devices.json, devices-peak.json, plan.json, tests.txt, validate.log and
#                the sweep (sweep.json with --quick, else the profile named as above); default
#                runs/gpu-validate-<time>, and without --quick the profile under profiles/
#     --aa       sweep again, compare the runs and record the A/A drift (`hwprofile check --calibrate`): this
#                GPU's thresholds for `hwprofile check` (docs/ci.md); adds one more sweep's time limit
#     --dry-run  only say what would run, the time limits and the sweep's plan (needs no GPU)
#   PYTHON=/path/to/python picks the interpreter (default: .venv/bin/python, else python3).
#
# Exit: 0 all good, 1 a test or a runner failed, 2 bad options, 3 no usable GPU, hwprofile not importable, or a
# carried wheel could not be installed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVICE=cuda:0 DRY=0 AA=0 QUICK=0 OUT_DIR="" WHEELS="" ORT_GPU="" OUT_GIVEN=0
GPU_RUNNERS="torch:cuda ort:cuda ort:tensorrt trt"
abs() { [[ $1 = /* ]] && echo "$1" || echo "$PWD/$1"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=${2:?--device needs a value, e.g. cuda:0}; shift 2 ;;
    --runners) GPU_RUNNERS=$(echo "${2:?--runners needs a list}" | tr ',' ' '); shift 2 ;;
    --out-dir) OUT_DIR=$(abs "${2:?--out-dir needs a folder}"); OUT_GIVEN=1; shift 2 ;;
    --wheels) WHEELS=$(abs "${2:?--wheels needs the folder scripts/gpu-wheels.sh filled}"); shift 2 ;;
    --ort-gpu) ORT_GPU=$(abs "${2:?--ort-gpu needs the folder of the chunks (scripts/ort-gpu-carry.sh)}"); shift 2 ;;
    --quick) QUICK=1; shift ;;
    --aa) AA=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-validate: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for d in "$WHEELS" "$ORT_GPU"; do
  [ -z "$d" ] || [ -d "$d" ] || { echo "gpu-validate: no folder $d" >&2; exit 2; }
done
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
PROFILE_DIR="$ROOT/profiles"
if [ -n "$OUT_DIR" ]; then PROFILE_DIR=$OUT_DIR; else OUT_DIR="$ROOT/runs/gpu-validate-$STAMP"; fi
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
[[ $PY == */* ]] && PY=$(abs "$PY")

# ---------------------------------------------------------------------------------------------- time limits
# Each step's hard limit in seconds (the kill grace included); the script's own total is their sum.
# tests/test_gpu_validate.py checks quick <= 240 and full <= 600, and docs/gpu.md states the same.
STEPS=(wheels ort_gpu import devices peaks runners plan tests sweep report)
if [ "$QUICK" = 1 ]; then
  LIMIT=(15 30 10 10 15 10 10 70 62 8)
  MODELS=EfficientNet-B0 STRATEGIES=dWr SCALES=1,2 BATCHES=1,32
  SWEEP_EXTRA=(--repeats 1 --seconds-per-config 0.5 --budget 45)
  TEST_PATHS=(tests/runners/test_gpu.py tests/exporters/test_tensorrt.py)
else
  LIMIT=(15 30 10 10 15 10 10 130 362 8)
  MODELS=EfficientNet-B0 STRATEGIES=w,r,dWr SCALES=1,4 BATCHES=1,32
  SWEEP_EXTRA=(--repeats 3 --seconds-per-config 1 --budget 300)
  TEST_PATHS=(tests/runners/test_gpu.py tests/exporters/test_tensorrt.py)
fi
GRACE=2
# GPU_VALIDATE_TIME_SCALE=N multiplies every limit: for rehearsals on a slow or shared CPU machine
# (scripts/gpu-image-dryrun.sh uses 3), never on the GPU machine, whose limits are the ones above
SCALE=${GPU_VALIDATE_TIME_SCALE:-1}
[[ $SCALE =~ ^[1-9][0-9]?$ ]] || { echo "gpu-validate: GPU_VALIDATE_TIME_SCALE must be a whole number from 1 to 99, got '$SCALE'" >&2; exit 2; }
declare -A LIMIT_OF USED
for i in "${!STEPS[@]}"; do LIMIT_OF[${STEPS[$i]}]=$((LIMIT[$i] * SCALE)); done
[ -n "$WHEELS" ] || LIMIT_OF[wheels]=0
[ -n "$ORT_GPU" ] || LIMIT_OF[ort_gpu]=0
TOTAL=0
for s in "${STEPS[@]}"; do TOTAL=$((TOTAL + LIMIT_OF[$s])); done
LIMIT_OF[aa]=$((LIMIT_OF[sweep] + 30 * SCALE))  # --aa: the sweep again, then compare and check --calibrate (30 s)
[ "$AA" = 1 ] && TOTAL=$((TOTAL + LIMIT_OF[aa]))
limits_line() {
  local s out=""
  for s in "${STEPS[@]}"; do [ "${LIMIT_OF[$s]}" -gt 0 ] && out+="$s ${LIMIT_OF[$s]} s, "; done
  [ "$AA" = 1 ] && out+="aa ${LIMIT_OF[aa]} s, "
  echo "time limits: ${out%, }; at most $TOTAL s in all$([ "$SCALE" = 1 ] || echo " (GPU_VALIDATE_TIME_SCALE=$SCALE)")" \
       "(the sweep's plan below may estimate more: its --budget" \
       "stops starting records and its step's limit stops the rest)"
}
# step NAME CMD...: run CMD under NAME's limit (SIGTERM, then SIGKILL after the grace); its time is recorded
step() {
  local name=$1 t0=$SECONDS rc
  shift
  timeout -k "$GRACE" "$((LIMIT_OF[$name] - GRACE))" "$@"
  rc=$?
  USED[$name]=$((SECONDS - t0))
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "gpu-validate: step '$name' ran out of its ${LIMIT_OF[$name]} s limit; stopped"
  return "$rc"
}

# small SECONDS CMD...: one of the short reports within 'report' (the runners from devices.json 2 s, the plan's
# line 2 s, the sweep's tally 4 s: the kill grace included)
small() {
  local t0=$SECONDS rc limit=$1
  shift
  timeout -k 1 $((limit * SCALE - 1)) "$@"
  rc=$?
  USED[report]=$(( ${USED[report]:-0} + SECONDS - t0 ))
  return "$rc"
}

cd "$ROOT" || exit 3
STARTED=$SECONDS
WRITE=$([ "$DRY" = 0 ] || [ "$OUT_GIVEN" = 1 ] && echo 1 || echo 0)  # a dry run writes only into a given --out-dir
if [ "$WRITE" = 1 ]; then
  mkdir -p "$OUT_DIR" || exit 3
  exec > >(tee -a "$OUT_DIR/validate.log") 2>&1  # everything below also goes to the log
fi
echo "gpu-validate $([ "$QUICK" = 1 ] && echo --quick || echo '(commit-grade)'): $(date -u +%FT%TZ), $PY, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')"
limits_line

# ------------------------------------------------------------------------------------------ carried wheels
SITE="${TMPDIR:-/tmp}/hwprofile-site-$STAMP"
[ "$DRY" = 1 ] || trap 'rm -rf "$SITE" "$SITE-ort"' EXIT  # the carried wheels' install lasts this run only
if [ "$DRY" = 1 ]; then
  [ -n "$WHEELS" ] && echo "(dry run: would install the wheels of $WHEELS into $SITE)"
  [ -n "$ORT_GPU" ] && echo "(dry run: would install onnxruntime-gpu from the chunks in $ORT_GPU into $SITE-ort)"
else
  if [ -n "$ORT_GPU" ]; then  # ahead of everything: it shadows the image's CPU onnxruntime
    echo "== onnxruntime-gpu from $ORT_GPU"
    step ort_gpu env PIP_PYTHON="$PY" "$ROOT/scripts/ort-gpu-carry.sh" install "$SITE-ort" --dir "$ORT_GPU" \
      || { echo "gpu-validate: onnxruntime-gpu could not be installed from $ORT_GPU (see above)" >&2; exit 3; }
    export PYTHONPATH="$SITE-ort${PYTHONPATH:+:$PYTHONPATH}"
  fi
  if [ -n "$WHEELS" ]; then
    echo "== carried wheels from $WHEELS"
    step wheels "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --require-hashes \
      --target "$SITE" --find-links "$WHEELS" -r "$ROOT/scripts/gpu-image/wheels.lock" \
      || { echo "gpu-validate: the wheels in $WHEELS could not be installed (exit $?); make them with scripts/gpu-wheels.sh DIR" >&2; exit 3; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    echo "installed $(ls -d "$SITE"/*.dist-info | xargs -n1 basename | sed 's/\.dist-info$//' | tr '\n' ' ')into $SITE"
  fi
fi
# From the repository root, `python -m hwprofile` imports this checkout; PYTHONPATH carries it (and the carried
# wheels) to the measuring and engine-building children too, so nothing needs installing.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if ! step import "$PY" -c "
try:
    import hwprofile
except ImportError as exc:
    raise SystemExit(f'import hwprofile failed: {exc}')"; then
  echo "gpu-validate: hwprofile is not importable with $PY from $ROOT (above: what is missing); this script downloads" \
       "nothing: carry the wheels (scripts/gpu-wheels.sh DIR here, then --wheels DIR) or set PYTHON=..." >&2
  exit 3
fi

echo "== devices and runners ($PY)"
if [ "$DRY" = 0 ]; then
  step devices "$PY" -m hwprofile devices --json > "$OUT_DIR/devices.json" \
    || echo "devices did not finish (exit $?); see $OUT_DIR/devices.json"
  small 2 "$PY" - "$OUT_DIR/devices.json" <<'PYEOF' 2>/dev/null
import json, sys
for r in json.load(open(sys.argv[1]))["runners"]:
    print(f"  {r['runner']:<13} {r['device']:<7} " + ("available: " + str(r["version"]) if r["available"]
                                                     else "unavailable: " + str(r["reason"])))
PYEOF
fi

# One line per runner: OK|NO <tab> runner <tab> reason; first line DEVICE or NODEVICE.
RUNNERS_TXT=$(mktemp) || exit 3
step runners "$PY" - "$DEVICE" "$GPU_RUNNERS" > "$RUNNERS_TXT" <<'PYEOF' || { echo "gpu-validate: could not query the runners" >&2; exit 3; }
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
PLAN=$(cat "$RUNNERS_TXT"); rm -f "$RUNNERS_TXT"

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
summary_times() {
  local s out=""
  for s in "${STEPS[@]}"; do [ -n "${USED[$s]:-}" ] && out+="$s ${USED[$s]} s, "; done
  echo "== $((SECONDS - STARTED)) s in all (limit $TOTAL s)${out:+: ${out%, }}"
}

PLANNED=$( [ ${#AVAILABLE[@]} -gt 0 ] && (IFS=,; echo "${AVAILABLE[*]}") || echo "$GPU_RUNNERS" | tr ' ' ',')
PLAN_ARGS=(run --plan --device "$DEVICE" --runners "$PLANNED" --models "$MODELS" --strategies "$STRATEGIES"
           --scales "$SCALES" --batch-sizes "$BATCHES" "${SWEEP_EXTRA[@]}")
echo "== plan of the sweep (runners $PLANNED)"
if [ "$DRY" = 1 ]; then
  step plan "$PY" -m hwprofile "${PLAN_ARGS[@]}" || echo "(no plan: exit $?)"
fi
if [ "$WRITE" = 1 ]; then
  step plan "$PY" -m hwprofile "${PLAN_ARGS[@]}" --json > "$OUT_DIR/plan.json" || echo "(no plan: exit $?)"
  small 2 "$PY" - "$OUT_DIR/plan.json" <<'PYEOF' 2>/dev/null || true
import json, sys
p = json.load(open(sys.argv[1]))
line = f"{len(p['items'])} records planned, about {p['estimated_s']:g} s"
if p.get("within_budget_s") is not None:
    line += f"; the sweep's --budget stops it at about {p['within_budget_s']:g} s"
print(line)
PYEOF
fi

if [ "$DRY" = 0 ] && [ -z "$NODEVICE" ]; then  # the GPU's matmul and copy peaks (the roofline's roofs)
  step peaks "$PY" -m hwprofile devices --device "$DEVICE" --peak --json > "$OUT_DIR/devices-peak.json" \
    || echo "devices --peak did not finish (exit $?); see $OUT_DIR/devices-peak.json"
fi

if [ -n "$NODEVICE" ] || [ ${#AVAILABLE[@]} -eq 0 ]; then
  echo "== nothing to validate on $DEVICE${NODEVICE:+: $NODEVICE}"
  report_not_tried
  summary_times
  exit 3
fi
RUNNERS=$(IFS=,; echo "${AVAILABLE[*]}")
BACKENDS=$(echo "$RUNNERS" | tr ',' '\n' | cut -d: -f1 | awk '!seen[$0]++' | paste -sd-)
if [ "$QUICK" = 1 ]; then
  OUT="$OUT_DIR/sweep.json"
else
  mkdir -p "$PROFILE_DIR" || exit 3
  OUT="$PROFILE_DIR/${DEVICE_ID}__${BACKENDS}__fp32__infer.json"
fi
[ -e "$OUT" ] && OUT="${OUT%.json}-$STAMP.json"  # never overwrite a saved profile
SWEEP=(--device "$DEVICE" --runners "$RUNNERS" --models "$MODELS" --strategies "$STRATEGIES" --scales "$SCALES"
       --batch-sizes "$BATCHES" "${SWEEP_EXTRA[@]}" --quiet)

echo "== on $DEVICE ($DEVICE_ID): runners $RUNNERS -> $OUT"
report_not_tried
if [ "$DRY" = 1 ]; then
  echo "(dry run: would run the gpu/trt tests (${TEST_PATHS[*]}) and: python -m hwprofile run ${SWEEP[*]} --out $OUT)"
  exit 0
fi

echo "== gpu and trt tests"
step tests "$PY" -m pytest -q -rs -p no:cacheprovider -m "gpu or trt" "${TEST_PATHS[@]}" 2>&1 | tee "$OUT_DIR/tests.txt"
TESTS_RC=${PIPESTATUS[0]}

echo "== sweep"  # the sweep saves after every record: a hard stop leaves a valid profile
step sweep "$PY" -m hwprofile run "${SWEEP[@]}" --out "$OUT" --format csv > /dev/null
RUN_RC=$?
if [ -f "$OUT" ]; then
  small 4 "$PY" - "$OUT" <<'PYEOF'
import sys
from hwprofile.profile import Profile

p = Profile.load(sys.argv[1])
for runner in sorted({r.runner for r in p.records}):
    recs = [r for r in p.records if r.runner == runner]
    ok = [r for r in recs if r.ok]
    why = sorted({f"{r.status}: {r.reason}" for r in recs if not r.ok})
    line = f"tried: {runner} - {len(ok)}/{len(recs)} ok"
    print(line + (f"; {why[0]}" + (f" (+{len(why) - 1} more)" if len(why) > 1 else "") if why else ""))
    energy = [r.energy for r in ok if r.energy and r.energy.joules_per_image is not None]
    if energy:
        print(f"  energy: {len(energy)}/{len(ok)} ok records have J/img ({energy[0].meter})")
PYEOF
fi

AA_RC=0
if [ "$AA" = 1 ] && [ -f "$OUT" ]; then
  echo "== A/A: the same sweep again, compared with the first"
  AGAIN="$OUT_DIR/${DEVICE_ID}-aa-$STAMP.json"
  LIMIT_OF[aa]=${LIMIT_OF[sweep]}
  step aa "$PY" -m hwprofile run "${SWEEP[@]}" --out "$AGAIN" --format csv > /dev/null && \
    timeout -k 2 13 "$PY" -m hwprofile compare "$OUT" "$AGAIN" && \
    timeout -k 2 13 "$PY" -m hwprofile check --baseline "$OUT" "$AGAIN" --calibrate
  AA_RC=$?
fi

summary_times
echo "tests: $([ "$TESTS_RC" = 0 ] && echo passed || echo "FAILED (exit $TESTS_RC)")"
echo "profile: $OUT (hwprofile run exit $RUN_RC)"
report_not_tried
if [ "$RUN_RC" = 3 ] && [ ! -f "$OUT" ]; then exit 3; fi
[ "$TESTS_RC" = 0 ] && [ "$RUN_RC" = 0 ] && [ $AA_RC = 0 ] && exit 0
exit 1
