"""Issue 22, a real full disk: ``run`` (fresh and ``--resume``), ``layers --out`` and ``plot --roofline`` writing
to a file system with no space left exit 3 with one line, leave no partial or 0-byte file behind (so nothing
blocks a rerun), and replace nothing.

The full disk is a 1 MiB tmpfs mounted in a private mount namespace (``unshare --mount``, or with
``--user --map-root-user`` where unprivileged user namespaces are allowed), filled until ENOSPC: the kernel's
own error, not a simulation. Where no such namespace can be made, the test is skipped;
tests/cli/test_new_surfaces.py covers the same outcomes with ENOSPC injected into fsync.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import error_lines

FAKE_CLI = str(Path(__file__).resolve().parents[1] / "fake_cli.py")

DRIVER = r"""
import errno, hashlib, json, os, subprocess, sys
python, fake_cli, work, tiny = sys.argv[1:5]
disk = os.path.join(work, "disk")
os.makedirs(disk)
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk], capture_output=True).returncode:
    print(json.dumps({"skip": "cannot mount a tmpfs in this mount namespace"}))
    sys.exit(0)
env = {**os.environ, "HWPROFILE_CACHE": os.path.join(work, "cache")}
FAKE_RUN = ["run", "--runners", "fake", "--models", "RegNetX-200MF", "--strategies", "w", "--scales", "1,2",
            "--batch-sizes", "1", "--retries", "0", "--no-peaks", "--quiet"]
RESUME = ["--retries", "0", "--no-peaks", "--quiet"]  # the peaks and retries are not what this test is about

def hw(*argv, fake=False):
    cmd = [python, fake_cli, *argv] if fake else [python, "-m", "hwprofile", *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, timeout=1200)
    return {"rc": done.returncode, "err": done.stderr}

def listing():
    return sorted(os.listdir(disk))

def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()

out = {}
# before the disk fills: a profile to resume (one of its two records removed) and a layers file to plot
out["first"] = hw(*FAKE_RUN, "--out", os.path.join(disk, "q.json"), fake=True)
data = json.load(open(os.path.join(disk, "q.json")))
data["records"] = data["records"][:1]
with open(os.path.join(disk, "q.json"), "w") as fh:
    json.dump(data, fh)
out["layers_src"] = hw("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--iterations", "4",
                       "--out", os.path.join(work, "layers.json"))
os.makedirs(os.path.join(disk, "figs"))
q_before = sha(os.path.join(disk, "q.json"))
fd = os.open(os.path.join(disk, "filler"), os.O_WRONLY | os.O_CREAT)
try:
    while True:
        os.write(fd, b"\0" * 4096)
except OSError as exc:
    assert exc.errno == errno.ENOSPC, exc
os.close(fd)
before = listing()
out["resume"] = hw("run", "--resume", os.path.join(disk, "q.json"), *RESUME, fake=True)
out["resume_listing"] = listing() == before
out["q_unchanged"] = sha(os.path.join(disk, "q.json")) == q_before
out["fresh"] = hw(*FAKE_RUN, "--out", os.path.join(disk, "p.json"), fake=True)
out["fresh_listing"] = listing() == before
out["layers"] = hw("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--iterations", "4",
                   "--out", os.path.join(disk, "l.json"))
out["layers_listing"] = listing() == before
out["plot"] = hw("plot", "--roofline", os.path.join(work, "layers.json"), "--out", os.path.join(disk, "figs"))
out["plot_listing"] = listing() == before and os.listdir(os.path.join(disk, "figs")) == []
os.remove(os.path.join(disk, "filler"))  # space again: nothing blocks the reruns
out["layers_again"] = hw("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--iterations", "4",
                         "--out", os.path.join(disk, "l.json"))
out["resume_again"] = hw("run", "--resume", os.path.join(disk, "q.json"), *RESUME, fake=True)
out["records_after"] = len(json.load(open(os.path.join(disk, "q.json")))["records"])
out["final_listing"] = listing()
print(json.dumps(out))
"""


def _namespace() -> list[str] | None:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    for cmd in (["unshare", "--mount", "--propagation", "private"],
                ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]):
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    return None


def one_line(result: dict, expected: int) -> None:
    assert result["rc"] == expected, result
    lines = error_lines(result["err"])
    assert len(lines) == 1 and lines[0].startswith("hwprofile: error:"), result
    assert "No space left on device" in lines[0] and "Traceback" not in result["err"], result


@pytest.mark.slow
def test_a_full_disk_is_exit_3_and_leaves_nothing_behind(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("matplotlib")
    from layer_fixtures import tiny_cnn

    ns = _namespace()
    if ns is None:
        pytest.skip("no private mount namespace here (unshare --mount is not permitted)")
    tiny = tiny_cnn(tmp_path / "tiny.onnx")
    done = subprocess.run([*ns, sys.executable, "-c", DRIVER, sys.executable, FAKE_CLI, str(tmp_path), tiny],
                          capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    assert out["first"]["rc"] == 0 and out["layers_src"]["rc"] == 0, out
    for step in ("resume", "fresh", "layers", "plot"):
        one_line(out[step], 3)
        assert out[f"{step}_listing"], (step, out)  # no 0-byte file, no temporary, no lock file
    assert out["q_unchanged"]  # the saved profile is not replaced by a partial one
    assert out["layers_again"]["rc"] == 0 and out["resume_again"]["rc"] == 0, out
    assert out["records_after"] == 2
    assert out["final_listing"] == ["figs", "l.json", "q.json"]
