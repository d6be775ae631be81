#!/usr/bin/env bash
# Carry onnxruntime-gpu (~256 MB) to the offline GPU machine, whose device calls carry at most 64 MiB each:
# split it here into chunks under 60 MiB, send one chunk per device call while the machine is warm, then
# reassemble, check and install it there. The pinned wheel and its sha256: scripts/gpu-image/ort-gpu.lock.
# The exact sequence of device calls and what it costs: docs/gpu.md ("Carrying onnxruntime-gpu").
#
#   scripts/ort-gpu-carry.sh split [--wheel FILE] [--dir DIR] [--chunk-mib N]
#       here: download the pinned wheel (or take FILE), check its sha256, split it into DIR (default
#       .carry/ort-gpu, ignored by git) as NAME.partNN of at most N MiB (default 56, under 60) with SHA256SUMS,
#       and print the device calls to make; the whole wheel is deleted once its chunks are checked
#   scripts/ort-gpu-carry.sh status [--dir DIR]
#       there, in each call: which chunks have arrived and are sound, which are still missing
#   scripts/ort-gpu-carry.sh install TARGET [--dir DIR]
#       there, in the last call: reassemble, check the wheel's sha256, and install it with
#       pip --no-index --no-deps --target TARGET (then put TARGET on PYTHONPATH; gpu-validate.sh --ort-gpu does)
#   PIP_PYTHON=/path/to/python picks the interpreter whose pip downloads/installs (default: .venv/bin/python
#   here if present, else python3).
#
# Exit: 0 done (status: every chunk is here), 1 status: chunks still missing, 2 bad options,
#       3 a download, a checksum or the install failed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK=${HWPROFILE_ORT_GPU_LOCK:-$ROOT/scripts/gpu-image/ort-gpu.lock}  # the override is for tests
ACTION=${1:-}
[ $# -gt 0 ] && shift
DIR="$ROOT/.carry/ort-gpu" WHEEL="" CHUNK_MIB=56 TARGET=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=${2:?--dir needs a folder}; shift 2 ;;
    --wheel) WHEEL=${2:?--wheel needs a file}; shift 2 ;;
    --chunk-mib) CHUNK_MIB=${2:-}; [[ $CHUNK_MIB =~ ^[0-9]+$ ]] && [ "$CHUNK_MIB" -ge 1 ] && [ "$CHUNK_MIB" -lt 60 ] \
                   || { echo "ort-gpu-carry: --chunk-mib must be a whole number of MiB from 1 to 59, got '${2:-}'" >&2; exit 2; }
                 shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "ort-gpu-carry: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) if [ "$ACTION" = install ] && [ -z "$TARGET" ]; then TARGET=$1; shift
       else echo "ort-gpu-carry: unexpected argument '$1' (see --help)" >&2; exit 2; fi ;;
  esac
done
PY=${PIP_PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
NAME_HASH=$(sed -e 's/#.*//' "$LOCK" | tr -d '\\\n' | tr -s ' ')
PIN=$(echo "$NAME_HASH" | grep -o '[a-z_-]*==[0-9.]*' | head -1)
SHA=$(echo "$NAME_HASH" | grep -o 'sha256:[0-9a-f]*' | head -1 | cut -d: -f2)
WHEEL_NAME="onnxruntime_gpu-${PIN#*==}-cp312-cp312-manylinux_2_28_x86_64.whl"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

case "$ACTION" in
  split)
    mkdir -p "$DIR" || exit 3
    if [ -z "$WHEEL" ]; then
      WHEEL="$DIR/$WHEEL_NAME"
      if [ ! -f "$WHEEL" ]; then
        echo "ort-gpu-carry: downloading $PIN for Python 3.12 (about 256 MB)"
        "$PY" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes --python-version 3.12 \
          --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 -d "$DIR" -r "$LOCK" \
          2>&1 | grep -v "^WARNING: Location '"
      fi
    fi
    [ -f "$WHEEL" ] || { echo "ort-gpu-carry: no wheel at $WHEEL" >&2; exit 3; }
    [ "$(sha_of "$WHEEL")" = "$SHA" ] || { echo "ort-gpu-carry: $WHEEL is not the pinned $PIN (sha256 differs from $LOCK)" >&2; exit 3; }
    SIZE=$(stat -c %s "$WHEEL") LIMIT=$((CHUNK_MIB * 1024 * 1024))
    N=$(( (SIZE + LIMIT - 1) / LIMIT ))
    rm -f "$DIR/$WHEEL_NAME".part* "$DIR/SHA256SUMS"
    split -n "$N" -d -a 2 "$WHEEL" "$DIR/$WHEEL_NAME.part" || exit 3
    (cd "$DIR" && sha256sum "$WHEEL_NAME".part* > SHA256SUMS && echo "$SHA  $WHEEL_NAME" >> SHA256SUMS) || exit 3
    # the round trip, before anything is sent
    [ "$(cat "$DIR/$WHEEL_NAME".part* | sha256sum | cut -d' ' -f1)" = "$SHA" ] \
      || { echo "ort-gpu-carry: the chunks do not reassemble into the wheel" >&2; exit 3; }
    [ "$WHEEL" = "$DIR/$WHEEL_NAME" ] && rm -f "$WHEEL"
    REL=${DIR#"$ROOT"/}
    echo "ort-gpu-carry: $N chunks of at most $CHUNK_MIB MiB in $REL (sha256s in $REL/SHA256SUMS; they reassemble into $PIN)"
    ls -l "$DIR" | tail -n +2
    echo "device calls, one after another while the machine stays warm (docs/gpu.md):"
    i=0
    for part in "$DIR/$WHEEL_NAME".part*; do
      carry="\"$REL/$(basename "$part")\""
      [ $i = 0 ] && carry="\"$REL/SHA256SUMS\", $carry, \".carry/wheels\""
      if [ $i -lt $((N - 1)) ]; then
        echo "  run(command=\"scripts/ort-gpu-carry.sh status\", carry=[$carry], timeout_s=60)"
      else
        echo "  run(command=\"scripts/gpu-validate.sh --wheels .carry/wheels --ort-gpu $REL --out-dir \$OUT\", carry=[$carry], timeout_s=600)"
      fi
      i=$((i + 1))
    done
    ;;
  status|install)
    [ -f "$DIR/SHA256SUMS" ] || { echo "ort-gpu-carry: no $DIR/SHA256SUMS: carry it with the first chunk" >&2; exit 3; }
    HAVE=0 MISSING=() BAD=()
    while read -r sum name; do
      case "$name" in *.part*) ;; *) continue ;; esac
      if [ ! -f "$DIR/$name" ]; then MISSING+=("$name")
      elif [ "$(sha_of "$DIR/$name")" != "$sum" ]; then BAD+=("$name")
      else HAVE=$((HAVE + 1)); fi
    done < "$DIR/SHA256SUMS"
    TOTAL=$((HAVE + ${#MISSING[@]} + ${#BAD[@]}))
    echo "ort-gpu-carry: $HAVE of $TOTAL chunks here and sound${MISSING[0]+; missing: ${MISSING[*]}}${BAD[0]+; damaged (send again): ${BAD[*]}}"
    if [ "$ACTION" = status ]; then [ "$HAVE" = "$TOTAL" ] && exit 0; exit 1; fi
    [ -n "$TARGET" ] || { echo "ort-gpu-carry: install needs a TARGET folder" >&2; exit 2; }
    [ "$HAVE" = "$TOTAL" ] || { echo "ort-gpu-carry: cannot install: chunks missing or damaged" >&2; exit 3; }
    WHL_DIR=$(mktemp -d) || exit 3
    cat "$DIR/$WHEEL_NAME".part* > "$WHL_DIR/$WHEEL_NAME" || exit 3
    [ "$(sha_of "$WHL_DIR/$WHEEL_NAME")" = "$SHA" ] || { echo "ort-gpu-carry: the reassembled wheel's sha256 is not the pinned one" >&2; rm -rf "$WHL_DIR"; exit 3; }
    STARTED=$SECONDS
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --require-hashes \
      --target "$TARGET" --find-links "$WHL_DIR" -r "$LOCK" 2>&1 | grep -v "^WARNING: Location '"
    RC=${PIPESTATUS[0]}
    rm -rf "$WHL_DIR"
    [ "$RC" = 0 ] || { echo "ort-gpu-carry: pip could not install $PIN into $TARGET (exit $RC)" >&2; exit 3; }
    echo "ort-gpu-carry: $PIN installed into $TARGET in $((SECONDS - STARTED)) s; put it first on PYTHONPATH"
    ;;
  *) echo "ort-gpu-carry: expected split, status or install (see --help)" >&2; exit 2 ;;
esac
