"""Every damaged or hostile input of issue 11 is one line on stderr with exit 2 (3 where the environment
is at fault): no traceback, nothing written outside the target, nothing existing replaced."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import one_line

DATA = Path(__file__).resolve().parent.parent / "data" / "profiles"


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content (links as their target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = b"->" + os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out




def good() -> dict:
    return json.loads((DATA / "cpu-a.json").read_text())


# ----------------------------------------------------------------------------- damaged profiles

def _set(path: str, value):
    def mutate(data: dict) -> dict:
        target = data["records"][0]
        *parents, last = path.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
        return data
    return mutate


RAW = "__RAW__"  # values JSON cannot express through json.dumps: substituted into the text
DAMAGED = {
    "latency-5": (_set("latency", 5), "latency"),
    "memory-null": (_set("memory", None), "memory"),
    "settings-null": (_set("settings", None), "settings"),
    "median-string": (_set("latency.median_ms", "8.6"), "latency.median_ms"),
    "median-negative": (_set("latency.median_ms", -3.0), "latency.median_ms"),
    "median-zero": (_set("latency.median_ms", 0), "latency.median_ms"),
    "flops-huge": (_set("flops", 10**400), "flops"),
    "strategy-list": (_set("strategy", ["dWr"]), "strategy"),
    "scale-word": (_set("scale", "four"), "scale"),
    "batch-word": (_set("batch", "eight"), "batch"),
    "batch-zero": (_set("batch", 0), "batch"),
    "batch-float": (_set("batch", 8.0), "batch"),
    "batch-bool": (_set("batch", True), "batch"),
    "status-unknown": (_set("status", "fine"), "status"),
    "sweeps-string": (lambda d: {**d, "sweeps": "abc"}, "sweeps"),
    "devices-list": (lambda d: {**d, "devices": []}, "devices"),
    "records-object": (lambda d: {**d, "records": {}}, "records"),
    "record-string": (lambda d: {**d, "records": ["x"]}, "record 0"),
    "memory-reading-string": (_set("memory", {"cpu_peak_rss_mb": "12"}), "memory"),
    "samples-string": (_set("latency.samples_ms", [["1"]]), "samples_ms"),
}
RAW_TEXT = {  # non-standard JSON: NaN and Infinity
    "flops-nan": ('"flops": 199040872', '"flops": NaN'),
    "median-minus-infinity": ('"median_ms": 8.600155', '"median_ms": -Infinity'),
    "median-nan": ('"median_ms": 8.600155', '"median_ms": NaN'),
}


def _write_damaged(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "in" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    if name in DAMAGED:
        path.write_text(json.dumps(DAMAGED[name][0](good())))
    elif name in RAW_TEXT:
        old, new = RAW_TEXT[name]
        text = json.dumps(good())
        assert old in text
        path.write_text(text.replace(old, new, 1))
    elif name == "deep-5000":
        path.write_text('{"schema": "hwprofile.profile", "schema_version": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}")
    elif name == "deep-200-in-settings":
        data = good()
        data["records"][0]["settings"]["nested"] = json.loads("[" * 200 + "]" * 200)
        path.write_text(json.dumps(data))
    return path


ALL = [*DAMAGED, *RAW_TEXT, "deep-5000", "deep-200-in-settings"]


@pytest.mark.parametrize("name", ALL)
def test_show_refuses_a_damaged_profile_in_one_line(cli, tmp_path, name):
    path = _write_damaged(tmp_path, name)
    before = tree(tmp_path)
    code, out, err = cli("show", str(path))
    one_line(code, err)
    assert tree(tmp_path) == before and not out
    if name in DAMAGED and DAMAGED[name][1] not in ("sweeps", "devices", "records"):
        assert DAMAGED[name][1] in err  # names the field
    if name in DAMAGED and DAMAGED[name][1] not in ("sweeps", "devices", "records", "record 0"):
        assert "record 0 (RegNetX-200MF" in err or "record 0" in err  # names the record


@pytest.mark.parametrize("name", ["median-string", "scale-word", "batch-word", "batch-zero", "flops-nan",
                                  "median-nan", "sweeps-string", "deep-5000", "strategy-list"])
@pytest.mark.parametrize("command", ["compare", "merge", "check"])
def test_compare_merge_check_refuse_a_damaged_profile(cli, tmp_path, name, command):
    bad = _write_damaged(tmp_path, name)
    ok = tmp_path / "in" / "ok.json"
    shutil.copy(DATA / "cpu-a.json", ok)
    before = tree(tmp_path)
    if command == "compare":
        code, _, err = cli("compare", str(ok), str(bad))
    elif command == "merge":
        code, _, err = cli("merge", str(ok), str(bad), "-o", str(tmp_path / "merged.json"))
    else:
        code, _, err = cli("check", "--baseline", str(bad), str(ok), "--junit", str(tmp_path / "j.xml"))
    one_line(code, err)
    assert tree(tmp_path) == before


def test_merge_writes_only_standard_json(cli, tmp_path):
    out = tmp_path / "m.json"
    code, _, err = cli("merge", str(DATA / "cpu-a.json"), str(DATA / "gpu.json"), "-o", str(out))
    assert code == 0, err

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    data = json.loads(out.read_text(), parse_constant=refuse)
    assert data["schema_version"] == 2


# ----------------------------------------------------------------------------- ONNX files

onnx = pytest.importorskip("onnx")


def _tiny(path: Path, *, conv_inputs=("input", "w", "b"), w_shape=(8, 3, 3, 3), matmul: bool = False,
          metadata: dict | None = None, external: str | None = None) -> Path:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones(w_shape, np.float32), "w")
    b = numpy_helper.from_array(np.zeros(w_shape[0], np.float32), "b")
    fc = numpy_helper.from_array(np.ones((10, w_shape[0]), np.float32), "fc")
    nodes = [helper.make_node("Conv", list(conv_inputs), ["c"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"])]
    nodes.append(helper.make_node("MatMul", ["f"], ["logits"], name="mm") if matmul else
                 helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1, name="fc"))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], [w, b, fc])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for k, v in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    if external is not None:
        t = model.graph.initializer[0]
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", external
    path.write_bytes(model.SerializeToString())
    return path


def _folded(channels) -> dict:
    from hwprofile.graph import FOLDED_BN_KEY

    return {FOLDED_BN_KEY: json.dumps({"convs": [{"node": "conv0", "channels": channels, "bias": True,
                                                   "bn": True}]})}


ONNX_CASES = {
    "external-nul": dict(external="we\x00ights.bin"),
    "external-300-chars": dict(external="w" * 300),
    "external-outside": dict(external="../../etc/passwd"),
    "folded-bn-abc": dict(metadata=_folded("abc")),
    "folded-bn-null": dict(metadata=_folded(None)),
    "folded-bn-not-json": dict(metadata={"hwprofile.folded_bn": "{"}),
    "conv-one-input": dict(conv_inputs=("input",)),
    "matmul-one-input": dict(matmul=True),
    "weight-zero-dim": dict(w_shape=(0, 3, 3, 3)),
    "spec-not-object": dict(metadata={"hwprofile.spec": "[1, 2, 3]"}),
    "spec-string": dict(metadata={"hwprofile.spec": '"abc"'}),
    "spec-nameless": dict(metadata={"hwprofile.spec": '{"name": 5}'}),
}


@pytest.mark.parametrize("name", list(ONNX_CASES))
def test_complexity_of_a_malformed_onnx_file_is_a_result_or_one_line(cli, tmp_path, name):
    path = _tiny(tmp_path / f"{name}.onnx", **ONNX_CASES[name])
    before = tree(tmp_path)
    code, out, err = cli("complexity", str(path), "--json")
    assert tree(tmp_path) == before
    if code == 0:  # counted (what cannot be counted is listed as uncounted)
        rec = json.loads(out)
        assert rec["flops"] >= 0 and rec["params"] >= 0
        assert name not in ("external-nul", "external-300-chars", "external-outside")
    else:
        one_line(code, err)


@pytest.mark.parametrize("content", [b"\x08\x07\x12\x04trun", os.urandom(256)], ids=["truncated", "random"])
def test_run_refuses_a_broken_onnx_file_before_measuring(cli, tmp_path, content):
    path = tmp_path / "m.onnx"
    path.write_bytes(content)
    before = tree(tmp_path)
    code, _, err = cli("run", "--models", str(path), "--runners", "ort:cpu", "--batch-sizes", "1",
                       "--out", str(tmp_path / "p.json"))
    one_line(code, err)
    assert tree(tmp_path) == before
    code2, _, err2 = cli("complexity", str(path))
    one_line(code2, err2)


# ----------------------------------------------------------------------------- bounds

@pytest.mark.parametrize("argv,needle", [
    (["run", "--batch-sizes", "nan", "--models", "RegNetX-200MF"], "--batch-sizes"),
    (["run", "--batch-sizes", "inf", "--models", "RegNetX-200MF"], "--batch-sizes"),
    (["run", "--batch-sizes", "100000", "--models", "RegNetX-200MF"], "4096"),
    (["complexity", "EfficientNet-B0", "--strategy", "dWr", "--scale", "1e300"], "limit"),
    (["complexity", "EfficientNet-B0", "--strategy", "d", "--scale", "1e9"], "limit"),
    (["complexity", "EfficientNet-B0", "--strategy", "w", "--scale", "5000"], "channels"),
    (["complexity", "RegNetX-200MF", "--strategy", "r", "--scale", "400"], "pixels"),
    (["complexity", "EfficientNet-B0", "--strategy", "d", "--scale", "1000"], "blocks"),
    (["complexity", "EfficientNet-B0", "--strategy", "d0_w0_r0", "--scale", "4"], "scales nothing"),
    (["export", "EfficientNet-B0", "--strategy", "d0_w0_g0_r0", "--scale", "4", "-o", "x.onnx"], "scales nothing"),
    (["scale", "EfficientNet-B0", "--scales", "1e300"], "limit"),
    (["export", "EfficientNet-B0", "--batch", "99999999999", "-o", "x.onnx"], "limit"),
])
def test_out_of_bounds_arguments_are_refused_before_any_work(cli, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    code, _, err = cli(*argv)
    one_line(code, err)
    assert needle in err
    assert time.perf_counter() - start < 30  # refused up front, not after building a giant network
    assert tree(tmp_path) == {}


@pytest.mark.parametrize("argv", [
    ["select", str(DATA / "cpu-a.json"), "--model", "RegNetX-200MF", "--max-latency-ms", "100", "--scales", "1e300"],
    ["select", str(DATA / "cpu-a.json"), "--model", "RegNetX-200MF", "--max-latency-ms", "100", "--top", "0"],
    ["select", str(DATA / "cpu-a.json"), "--model", "RegNetX-200MF", "--max-latency-ms", "100", "--batch", "0"],
    ["compare", str(DATA / "cpu-a.json"), str(DATA / "cpu-a2.json"), "--seed", "-1"],
    ["check", "--baseline", str(DATA / "cpu-a.json"), str(DATA / "cpu-a2.json"), "--seed", "-1"],
    ["complexity", "EfficientNet-B0", "--strategy", "dWr", "--scale", "nan"],
])
def test_bad_numbers_are_one_line(cli, argv):
    code, _, err = cli(*argv)
    one_line(code, err)


def test_select_top_one_shows_rows(cli):
    code, out, err = cli("select", str(DATA / "cpu-a.json"), "--model", "RegNetX-200MF", "--max-latency-ms", "1000",
                         "--top", "1", "--json")
    assert code == 0, err
    assert json.loads(out)


# ----------------------------------------------------------------------------- outputs

@pytest.mark.slow
def test_plot_file_names_from_device_id_stay_inside_out(cli, tmp_path):
    pytest.importorskip("matplotlib")
    data = good()
    evil = "../../escaped"
    data["devices"] = {evil: data["devices"]["synthetic-cpu"]}
    for r in data["records"]:
        r["device_id"] = evil
    prof = tmp_path / "in" / "p.json"
    prof.parent.mkdir()
    prof.write_text(json.dumps(data))
    out = tmp_path / "a" / "b" / "plots"
    code, stdout, err = cli("plot", str(prof), "--out", str(out))
    assert code == 0, err
    written = [Path(line) for line in stdout.split()]
    assert written and all(p.parent == out and p.is_file() for p in written)
    assert sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.png")) == ["a"] * len(written)
    # again: the plots exist, nothing is replaced without --force
    before = tree(tmp_path)
    code, _, err = cli("plot", str(prof), "--out", str(out))
    one_line(code, err)
    assert tree(tmp_path) == before
    assert cli("plot", str(prof), "--out", str(out), "--force")[0] == 0


def test_check_junit_never_replaces_a_file_without_force(cli, tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text("keep me")
    junit.chmod(0o600)
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    shutil.copy(DATA / "cpu-a.json", base)
    shutil.copy(DATA / "cpu-a2.json", cur)
    before = tree(tmp_path)
    code, _, err = cli("check", "--baseline", str(base), str(cur), "--junit", str(junit))
    one_line(code, err)
    assert "--force" in err and tree(tmp_path) == before
    code, _, err = cli("check", "--baseline", str(base), str(cur), "--junit", str(junit), "--force")
    assert code in (0, 1), err
    assert junit.read_text().startswith("<?xml") or "<testsuite" in junit.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.json", "cur.json", "junit.xml"]  # no temporaries


def test_check_junit_into_an_unwritable_place_is_one_line(cli, tmp_path):
    code, _, err = cli("check", "--baseline", str(DATA / "cpu-a.json"), str(DATA / "cpu-a2.json"),
                       "--junit", "/proc/hwprofile-junit.xml")
    one_line(code, err)


@pytest.mark.parametrize("target", ["/proc/hwprofile-merged.json", "/proc/self/hwprofile.json"])
def test_merge_into_an_unwritable_folder_is_one_line(cli, target):
    code, _, err = cli("merge", str(DATA / "cpu-a.json"), str(DATA / "gpu.json"), "-o", target)
    one_line(code, err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_merge_into_a_read_only_folder_is_one_line(cli, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = cli("merge", str(DATA / "cpu-a.json"), str(DATA / "gpu.json"), "-o", str(folder / "m.json"))
        one_line(code, err)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_merge_never_replaces_unless_forced(cli, tmp_path):
    out = tmp_path / "m.json"
    out.write_text("precious")
    code, _, err = cli("merge", str(DATA / "cpu-a.json"), str(DATA / "gpu.json"), "-o", str(out))
    one_line(code, err)
    assert out.read_text() == "precious"
    assert cli("merge", str(DATA / "cpu-a.json"), str(DATA / "gpu.json"), "-o", str(out), "--force")[0] == 0
    assert json.loads(out.read_text())["schema_version"] == 2


def test_merge_refuses_a_symlink_target(cli, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out").mkdir()
    link = tmp_path / "out" / "m.json"
    link.symlink_to(victim)
    for extra in ([], ["--force"]):
        code, _, err = cli("merge", str(DATA / "cpu-a.json"), str(DATA / "gpu.json"), "-o", str(link), *extra)
        one_line(code, err)
        assert victim.read_text() == "precious" and link.is_symlink()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_of_killed_saves_are_cleaned(cli, tmp_path):
    out = tmp_path / "m.json"
    dead = tmp_path / f".m.json.{_dead_pid()}-0a1b2c.tmp"
    old = tmp_path / ".m.json.x1y2z3ab.tmp"  # an earlier hwprofile's mkstemp name, two hours old
    live = tmp_path / f".m.json.{os.getppid()}-ffffff.tmp"  # a running writer's: kept
    other = tmp_path / ".other.json.x1y2z3ab.tmp"  # another file's: kept
    for p in (dead, old, live, other):
        p.write_text("partial")
    stamp = time.time() - 7200
    os.utime(old, (stamp, stamp))
    os.utime(other, (stamp, stamp))
    code, _, err = cli("merge", str(DATA / "cpu-a.json"), str(DATA / "gpu.json"), "-o", str(out))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.json", live.name, other.name])
