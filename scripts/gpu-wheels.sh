#!/usr/bin/env bash
# Download, on a machine that reaches the package index, the wheels hwprofile needs on the GPU image and
# that the image lacks (pydantic and its family; the list: scripts/gpu-image/wheels.lock, pinned with sha256s).
# The image cannot download anything: carry DIR there (the device tool's `carry`), then
# `scripts/gpu-validate.sh --wheels DIR` installs them (pip --no-index --no-deps --target, plus PYTHONPATH).
#
#   scripts/gpu-wheels.sh DIR [--python 3.12]
#     DIR       where the wheels go (created; files already there are kept); a DIR inside the repository
#               must be ignored by git (e.g. .carry/wheels) or it travels with every device call
#     --python  the image's Python version (default 3.12: the GPU image's python3 is 3.12.3)
#   PIP_PYTHON=/path/to/python picks the interpreter whose pip downloads (default: .venv/bin/python, else python3).
#
# Exit: 0 done, 2 bad options, 3 the download or a hash check failed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$ROOT/scripts/gpu-image/wheels.lock"
DIR="" PYV=3.12
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYV=${2:-}; [[ $PYV =~ ^3\.[0-9]+$ ]] || { echo "gpu-wheels: --python needs a version like 3.12, got '${2:-}'" >&2; exit 2; }; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-wheels: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$DIR" ] || { echo "gpu-wheels: one DIR expected, got '$DIR' and '$1'" >&2; exit 2; }; DIR=$1; shift ;;
  esac
done
[ -n "$DIR" ] || { echo "gpu-wheels: expected a folder for the wheels: scripts/gpu-wheels.sh DIR [--python 3.12]" >&2; exit 2; }
PY=${PIP_PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
mkdir -p "$DIR" || exit 3
STARTED=$SECONDS
# manylinux tags, newest first (pip matches each N exactly); the image's glibc is recent enough for all of them
if ! "$PY" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes --python-version "$PYV" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$DIR" -r "$LOCK" 2>&1 \
    | grep -v "^WARNING: Location '"; then :; fi
# every pinned package must be there, as a wheel whose sha256 the lock lists
"$PY" - "$LOCK" "$DIR" "$PYV" <<'PYEOF' || exit 3
import hashlib, re, sys
from pathlib import Path

lock, folder, pyv = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
pins = {}
for block in re.split(r"\n(?=[A-Za-z])", re.sub(r"\\\n\s*", " ", lock.read_text())):
    line = block.split("#", 1)[0].strip()
    if line:
        name, version = line.split()[0].split("==")
        pins[name.lower().replace("-", "_")] = (version, set(re.findall(r"sha256:([0-9a-f]{64})", line)))
tag = "cp" + pyv.replace(".", "")
problems, lines = [], []
for name, (version, hashes) in sorted(pins.items()):
    found = [w for w in folder.glob(f"{name}-{version}-*.whl") if "-py3-none-" in w.name or f"-{tag}-" in w.name]
    if not found:
        problems.append(f"{name} {version}: no wheel for Python {pyv} in {folder}")
        continue
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
    if digest not in hashes:
        problems.append(f"{found[0].name}: sha256 {digest} is not in {lock.name}")
    lines.append(f"{digest}  {found[0].name}")
if problems:
    print("gpu-wheels: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
(folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
size = sum((folder / line.split("  ", 1)[1]).stat().st_size for line in lines)
print(f"gpu-wheels: {len(lines)} wheels for Python {pyv}, {size / 2**20:.1f} MiB, in {folder} (SHA256SUMS beside them)")
PYEOF
echo "gpu-wheels: done in $((SECONDS - STARTED)) s; on the GPU machine: scripts/gpu-validate.sh --quick --wheels $DIR"
