"""Issue 22: the newer surfaces as safe as the old. Each case is one line on stderr with exit 2 (invalid input)
or 3 (the environment's fault), nothing written outside the target, nothing replaced, no partial file left.

Measurements are faked here (a canned layer breakdown, the scripted sweep measure), so what is tested is the
surface: arguments, files, exit codes. tests/cli/test_process_hygiene.py covers processes, and
tests/cli/test_full_disk.py a real full file system."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import error_lines, one_line
from hwprofile.profile import Measurement

DATA = Path(__file__).resolve().parents[1] / "data" / "profiles"


def tree(folder: Path) -> dict[str, bytes]:
    """Every entry under ``folder`` with its content (links as their target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = b"->" + os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out




ROWS = [{"name": n, "kind": "layer", "op_type": op, "group": None, "depthwise": dw, "time_ms": t, "flops": f,
         "bytes": b, "onnx_nodes": [n], "onnx_ops": [op]}
        for n, op, dw, t, f, b in [("conv1", "Conv", False, 0.4, 442_368, 60_000), ("dw", "Conv", True, 0.2, 147_456,
                                                                                    131_000),
                                   ("pw", "Conv", False, 0.3, 262_144, 132_000), ("fc", "Gemm", False, 0.05, 160, 700)]]


def canned(runner, workload, **_kw) -> Measurement:
    """What measure_layers returns for a tiny graph, without measuring."""
    return Measurement(runner, "ok", None, {"median_ms": 1.0}, None, {}, {}, 0.1,
                       {"rows": [dict(r) for r in ROWS], "method": "canned", "iterations": 4,
                        "peaks": {"flops_per_s": 1e11, "bytes_per_s": 1e10}})


@pytest.fixture
def tiny(tmp_path_factory):
    pytest.importorskip("onnx")
    from layer_fixtures import tiny_cnn

    return tiny_cnn(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture
def fake_layers(monkeypatch):
    """``layers`` measures nothing: measure_layers returns the canned breakdown; the workloads are kept."""
    from hwprofile.cli import layers_run as layers_cli

    seen = []

    def measure(runner, workload, **kw):
        seen.append(workload)
        return canned(runner, workload, **kw)

    monkeypatch.setattr(layers_cli, "measure_layers", measure)
    return seen


def layers_file(cli, tiny, path: Path) -> Path:
    code, _, err = cli("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--iterations", "4",
                       "--out", str(path))
    assert code == 0, err
    return path


def full_disk_after(monkeypatch, calls: int = 0) -> dict:
    """``os.fsync`` of a regular file fails with ENOSPC (as a full disk reports it) after ``calls`` good calls;
    returns a switch: ``disk["full"] = False`` frees the disk again."""
    real, disk = os.fsync, {"full": True, "n": 0}

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            disk["n"] += 1
            if disk["full"] and disk["n"] > calls:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return disk


# ----------------------------------------------------------------------------- 1. symlinks

@pytest.mark.slow
def test_plot_roofline_never_writes_through_a_dangling_link(cli, tmp_path, tiny, fake_layers):
    pytest.importorskip("matplotlib")
    src = layers_file(cli, tiny, tmp_path / "layers.json")
    out = tmp_path / "out"
    out.mkdir()
    escaped = tmp_path / "ESCAPED.png"
    code, first, err = cli("plot", "--roofline", str(src), "--out", str(tmp_path / "probe"))
    assert code == 0, err
    name = Path(first.split()[0]).name
    (out / name).symlink_to(escaped)
    code, text, err = cli("plot", "--roofline", str(src), "--out", str(out))
    assert code == 0, err
    written = Path(text.split()[0])
    assert not escaped.exists() and not os.path.lexists(escaped)
    assert written.parent == out and written.name != name and written.is_file() and not written.is_symlink()
    assert (out / name).is_symlink()  # the planted link itself is left as it was


def test_layers_out_refuses_a_dangling_link(cli, tmp_path, tiny, fake_layers):
    target = tmp_path / "elsewhere.json"
    link = tmp_path / "l.json"
    link.symlink_to(target)
    before = tree(tmp_path)
    code, _, err = cli("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--out", str(link))
    one_line(code, err)
    assert not os.path.lexists(target) and tree(tmp_path) == before and fake_layers == []


# ----------------------------------------------------------------------------- 2, 14. full disk: exit 3, nothing left

def test_layers_out_on_a_full_disk_is_exit_3_and_leaves_nothing(cli, tmp_path, tiny, fake_layers, monkeypatch):
    disk = full_disk_after(monkeypatch)
    out = tmp_path / "l.json"
    code, _, err = cli("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--out", str(out))
    one_line(code, err, 3)
    assert "No space left on device" in err
    assert list(tmp_path.iterdir()) == []  # no 0-byte file, no temporary
    disk["full"] = False
    assert json.loads(layers_file(cli, tiny, out).read_text())["rows"]  # nothing blocks the rerun


@pytest.mark.slow
def test_plot_roofline_on_a_full_disk_is_exit_3_and_leaves_nothing(cli, tmp_path, tiny, fake_layers, monkeypatch):
    pytest.importorskip("matplotlib")
    src = layers_file(cli, tiny, tmp_path / "layers.json")
    out = tmp_path / "figs"
    disk = full_disk_after(monkeypatch)
    code, _, err = cli("plot", "--roofline", str(src), "--out", str(out))
    one_line(code, err, 3)
    assert list(out.iterdir()) == []
    disk["full"] = False
    code, text, err = cli("plot", "--roofline", str(src), "--out", str(out))
    assert code == 0 and Path(text.split()[0]).is_file(), err


@pytest.fixture
def fake_sweep(monkeypatch):
    """``run`` measures with the scripted sweep measure, and no device peaks."""
    import hwprofile.sweep._local
    import hwprofile.sweep._run
    from sweep_fakes import fake_measure

    monkeypatch.setattr(hwprofile.sweep._local, "measure", fake_measure)
    monkeypatch.setattr(hwprofile.sweep._run, "measure_peaks", lambda device: {"error": "not measured in tests"})


RUN = ("run", "--device", "cpu", "--runners", "torch:cpu", "--models", "RegNetX-200MF", "--strategies", "w",
       "--scales", "1,2", "--batch-sizes", "1", "--retries", "0", "--quiet")


def test_run_on_a_disk_that_fills_is_exit_3_and_keeps_the_last_save(cli, tmp_path, fake_sweep, monkeypatch):
    out = tmp_path / "p.json"
    # the two probes before measuring (hwprofile.atomic.check_writable: the early check of the path and the
    # opening of the profile), the opening save and the first record's save succeed
    disk = full_disk_after(monkeypatch, calls=4)
    code, _, err = cli(*RUN, "--out", str(out))
    one_line(code, err, 3)
    assert "No space left on device" in err and str(out) in err
    saved = json.loads(out.read_text())  # the last good save, whole
    assert len(saved["records"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]  # no temporary, no lock file
    disk["full"] = False
    code, _, err = cli(*RUN, "--resume", str(out))
    assert code == 0, err
    assert len(json.loads(out.read_text())["records"]) == 2


# ----------------------------------------------------------------------------- 4. one sweep per profile

HOLD = """
import sys
from hwprofile.locks import profile_lock
with profile_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_sweep_of_a_locked_profile_refuses_and_changes_nothing(cli, tmp_path, fake_sweep):
    out = tmp_path / "p.json"
    code, _, err = cli(*RUN, "--out", str(out))
    assert code == 0, err
    before = out.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # another sweep writing the profile
    try:
        assert holder.stdout.readline().strip() == "locked"
        for argv in (["run", "--resume", str(out), "--quiet"], [*RUN, "--out", str(out)]):
            code, _, err = cli(*argv)
            one_line(code, err, 3 if "--resume" in argv else 2)
            assert out.read_bytes() == before
        code, _, err = cli("run", "--resume", str(out), "--quiet")
        assert "being written by another hwprofile" in err and f"pid {holder.pid}" in err
    finally:
        holder.communicate("", timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]
    code, _, err = cli("run", "--resume", str(out), "--quiet")  # the lock went with its holder
    assert code == 0, err


# ----------------------------------------------------------------------------- 7. cache folders

@pytest.mark.parametrize("case,expected", [("--cache-dir FILE", 2), ("HWPROFILE_CACHE=FILE", 3), ("HOME=FILE", 3),
                                           ("HWPROFILE_CACHE=/proc/nope", 3)])
@pytest.mark.parametrize("command", ["export", "layers", "run"])
def test_a_cache_that_is_not_a_folder_is_one_line(cli, tmp_path, monkeypatch, fake_sweep, fake_layers, case,
                                                  expected, command):
    monkeypatch.chdir(tmp_path)
    plain = tmp_path / "a-file"
    plain.write_text("not a folder")
    extra = []
    monkeypatch.delenv("HWPROFILE_CACHE", raising=False)
    if case == "--cache-dir FILE":
        extra = ["--cache-dir", str(plain)]
    elif case == "HOME=FILE":
        monkeypatch.setenv("HOME", str(plain))
    else:
        monkeypatch.setenv("HWPROFILE_CACHE", case.split("=", 1)[1].replace("FILE", str(plain)))
    before = tree(tmp_path)
    argv = {"export": ["export", "RegNetX-200MF", "-o", str(tmp_path / "x.onnx"), *extra],
            "layers": ["layers", "RegNetX-200MF", "--runner", "ort:cpu", "--device", "cpu", *extra],
            "run": ["run", "--device", "cpu", "--runners", "ort:cpu", "--models", "RegNetX-200MF", "--scales", "1",
                    "--batch-sizes", "1", "--out", str(tmp_path / "p.json"), "--quiet"]}[command]
    if command == "run" and case == "--cache-dir FILE":
        pytest.skip("run has no --cache-dir")
    code, _, err = cli(*argv)
    one_line(code, err, expected)
    assert "cache" in err
    assert tree(tmp_path) == before


# ----------------------------------------------------------------------------- 8. a damaged saved sweep

@pytest.mark.parametrize("config", ["abc", 5, [1, 2], {"models": 5}, {"scales": "four"}, {"timing": []}])
def test_resume_of_a_profile_with_damaged_sweep_options_is_one_line(cli, tmp_path, config):
    data = json.loads((DATA / "cpu-a.json").read_text())
    data["sweeps"][0]["config"] = config
    out = tmp_path / "p.json"
    out.write_text(json.dumps(data))
    before = tree(tmp_path)
    code, _, err = cli("run", "--resume", str(out), "--quiet")
    one_line(code, err)
    assert tree(tmp_path) == before


# ----------------------------------------------------------------------------- 9. --shared-cache

def test_shared_cache_on_a_link_loop_is_one_line(cli, tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    (tmp_path / "file").write_text("x")
    for target in (loop, tmp_path / "file"):
        code, _, err = cli("run", "--executor", "ray", "--shared-cache", str(target), "--runners", "ort:cpu",
                           "--models", "RegNetX-200MF", "--out", str(tmp_path / "p.json"))
        one_line(code, err)
        assert "--shared-cache" in err
    assert not (tmp_path / "p.json").exists()


# ----------------------------------------------------------------------------- 11. ONNX files on layers

@pytest.mark.parametrize("content", [b"\x08\x07\x12\x04trun", b"\x00" * 64, os.urandom(256), b""],
                         ids=["truncated", "zeros", "random", "empty"])
def test_layers_on_a_broken_onnx_file_is_exit_2(cli, tmp_path, fake_layers, content):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    before = tree(tmp_path)
    code, _, err = cli("layers", str(path), "--runner", "ort:cpu", "--device", "cpu")
    one_line(code, err)
    assert "IndexError" not in err and fake_layers == []
    assert tree(tmp_path) == before


def test_layers_on_an_onnx_graph_without_an_image_input_is_exit_2(cli, tmp_path, fake_layers):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    path = tmp_path / "flat.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    code, _, err = cli("layers", str(path), "--runner", "ort:cpu", "--device", "cpu")
    one_line(code, err)
    assert fake_layers == []


def test_layers_reads_a_fixed_graphs_resolution_and_batch(cli, tmp_path, fake_layers):
    pytest.importorskip("onnx")
    import onnx

    from layer_fixtures import tiny_cnn

    path = tiny_cnn(tmp_path / "fixed.onnx", res=160)
    model = onnx.load(path)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2  # a fixed batch of 2
    onnx.save(model, path)
    code, _, err = cli("layers", path, "--runner", "ort:cpu", "--device", "cpu")
    assert code == 0, err
    assert (fake_layers[0].resolution, fake_layers[0].batch) == (160, 2)
    for argv in (["--resolution", "224"], ["--batch", "8"]):
        code, _, err = cli("layers", path, "--runner", "ort:cpu", "--device", "cpu", *argv)
        one_line(code, err)
    assert len(fake_layers) == 1


# ----------------------------------------------------------------------------- 15. SIGINT names the file

def test_an_interrupted_run_names_the_file_to_resume(cli, tmp_path, fake_sweep, monkeypatch):
    import hwprofile.sweep._run

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(hwprofile.sweep._run, "measure_items", interrupted)
    out = tmp_path / "p.json"
    code, _, err = cli(*RUN, "--out", str(out))
    assert code == 130
    assert error_lines(err) == [f"hwprofile: interrupted; the profile so far is saved in {out}: continue "
                                        f"with hwprofile run --resume {out}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]  # the lock file is gone


def test_an_interrupt_before_the_first_save_says_so(cli, tmp_path, fake_sweep, monkeypatch):
    import hwprofile.sweep._run

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(hwprofile.sweep._run, "measure_peaks", interrupted)
    code, _, err = cli(*RUN, "--out", str(tmp_path / "p.json"))
    assert code == 130 and error_lines(err) == ["hwprofile: interrupted before anything was saved"]
    assert list(tmp_path.iterdir()) == []
