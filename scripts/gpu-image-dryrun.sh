#!/usr/bin/env bash
# The GPU machine's first contact, rehearsed on a CPU machine that reaches the package index: a Python 3.12
# venv with the GPU image's relevant packages and WITHOUT pydantic (scripts/gpu-image/dryrun-requirements.txt;
# torch 2.11.0 from the index is the image's own CUDA 13.0 build, which runs on the CPU without a GPU), the
# carried wheels fetched by scripts/gpu-wheels.sh, then `scripts/gpu-validate.sh --quick --wheels DIR --out-dir OUT`.
# It must import hwprofile, write OUT/devices.json (torch:cpu available, torch:cuda unavailable with a reason)
# and end with the no-GPU exit, 3. Prints how long each part took.
#
#   scripts/gpu-image-dryrun.sh [--venv DIR] [--out-dir DIR] [--python PATH]
#     --venv     the venv (default .cache/gpu-image-py312; reused when it already holds the packages: building
#                it downloads several GB and takes minutes)
#     --out-dir  where gpu-validate.sh writes (default: a new temporary folder)
#     --python   a Python 3.12 interpreter for a new venv (default: ~/.pyenv/versions/3.12*/bin/python3, else python3.12)
#
# Exit: 0 the rehearsal went as the image's first contact must, 1 it did not (what differed is printed),
#       2 bad options, 3 no Python 3.12 or the venv could not be built.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.cache/gpu-image-py312" OUT="" PY312=""
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV=${2:?--venv needs a folder}; shift 2 ;;
    --out-dir) OUT=${2:?--out-dir needs a folder}; shift 2 ;;
    --python) PY312=${2:?--python needs an interpreter}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-image-dryrun: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
STARTED=$SECONDS
if [ -z "$PY312" ]; then
  PY312=$(ls -d "$HOME"/.pyenv/versions/3.12*/bin/python3 2>/dev/null | tail -1)
  [ -n "$PY312" ] || PY312=$(command -v python3.12 || true)
fi
REQS="$ROOT/scripts/gpu-image/dryrun-requirements.txt"
T0=$SECONDS
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, onnx, onnxruntime, onnxscript, numpy, scipy, tabulate, tqdm, psutil, pynvml, pytest" 2>/dev/null; then
  echo "venv: reusing $VENV"
else
  [ -n "$PY312" ] && "$PY312" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null \
    || { echo "gpu-image-dryrun: no Python 3.12 (give --python PATH; pyenv install 3.12)" >&2; exit 3; }
  echo "venv: building $VENV with $PY312 from $REQS (several GB: torch and its CUDA libraries)"
  "$PY312" -m venv "$VENV" && "$VENV/bin/python" -m pip install --quiet -r "$REQS" 2>&1 | grep -v "^WARNING: Location '"
  "$VENV/bin/python" -c "import torch, onnx, onnxruntime" 2>/dev/null || { echo "gpu-image-dryrun: the venv could not be built" >&2; exit 3; }
fi
VENV_S=$((SECONDS - T0))
"$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' \
  || { echo "gpu-image-dryrun: $VENV is not Python 3.12" >&2; exit 3; }
if "$VENV/bin/python" -c "import pydantic" 2>/dev/null; then
  echo "gpu-image-dryrun: $VENV has pydantic, which the GPU image lacks: remove it (pip uninstall pydantic pydantic-core)" >&2
  exit 1
fi
echo "venv: Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'), torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)'), no pydantic ($VENV_S s)"

WHEELS=$(mktemp -d) || exit 3
T0=$SECONDS
"$ROOT/scripts/gpu-wheels.sh" "$WHEELS" --python 3.12 || { echo "gpu-image-dryrun: gpu-wheels.sh failed" >&2; exit 1; }
WHEELS_S=$((SECONDS - T0))

[ -n "$OUT" ] || OUT=$(mktemp -d) || exit 3
T0=$SECONDS
# the limits are the GPU machine's (16 idle cores); this CPU machine may be small and shared: 3 times them
PYTHON="$VENV/bin/python" GPU_VALIDATE_TIME_SCALE=${GPU_VALIDATE_TIME_SCALE:-3} \
  "$ROOT/scripts/gpu-validate.sh" --quick --wheels "$WHEELS" --out-dir "$OUT"
RC=$?
VALIDATE_S=$((SECONDS - T0))
rm -rf "$WHEELS"

echo "== the rehearsal's checks"
FAILED=0
check() { if [ "$1" = 0 ]; then echo "ok: $2"; else echo "NOT OK: $2"; FAILED=1; fi; }
check "$([ "$RC" = 3 ] && echo 0 || echo 1)" "gpu-validate.sh ended with the no-GPU exit 3 (got $RC)"
grep -q "^installed annotated_types" "$OUT/validate.log" 2>/dev/null
check $? "the carried wheels were installed (validate.log)"
"$VENV/bin/python" - "$OUT/devices.json" <<'PYEOF'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except (OSError, ValueError) as exc:
    print(f"NOT OK: devices.json: {exc}")
    sys.exit(1)
runners = {(r["runner"], r["device"]): r for r in data["runners"]}
cpu, cuda = runners.get(("torch:cpu", "cpu")), runners.get(("torch:cuda", "cuda:0"))
ok = bool(cpu and cpu["available"] and cuda and not cuda["available"] and cuda["reason"])
print(("ok" if ok else "NOT OK") + f": devices.json: torch:cpu available={cpu and cpu['available']}; "
      f"torch:cuda available={cuda and cuda['available']}, reason: {cuda and cuda['reason']}")
sys.exit(0 if ok else 1)
PYEOF
[ $? = 0 ] || FAILED=1
echo "== took $((SECONDS - STARTED)) s: venv $VENV_S s, wheels $WHEELS_S s, gpu-validate.sh --quick $VALIDATE_S s (results in $OUT)"
exit $FAILED
