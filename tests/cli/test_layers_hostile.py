"""Damaged per-layer data (issue 22, items 5-6): each case through show --layers, compare --layers, check and
plot --roofline is one line on stderr with exit 2 naming the field: no traceback, nothing written."""

from __future__ import annotations

import json

import pytest

from helpers import fixture_profile
from hwprofile.analysis import compact

PEAKS = {"device": "cpu", "threads": 2, "matmul_fp32": {"flops_per_s": 1e11}, "copy": {"gb_per_s": 10.0}}


def _breakdown(ms: float) -> dict:
    rows = [{"name": n, "kind": "layer", "op_type": "Conv", "group": 1, "depthwise": False, "time_ms": ms * f,
             "flops": 1_000_000, "bytes": 100_000, "onnx_nodes": [n]} for n, f in (("a", 0.5), ("b", 0.4))]
    return compact({"rows": rows, "end_to_end_ms": ms, "profiled_run_ms": ms * 1.1, "time_source": "cpu",
                    "peaks": PEAKS})


def _profile(slow: float = 1.0) -> dict:
    data = json.loads(open(fixture_profile("cpu-a.json")).read())
    for r in data["records"]:
        r["latency"]["median_ms"] *= slow
        r["latency"]["samples_ms"] = [[x * slow for x in s] for s in r["latency"]["samples_ms"]]
        r["latency"]["medians_ms"] = [x * slow for x in r["latency"].get("medians_ms", [])]
        r["layers"] = _breakdown(r["latency"]["median_ms"])
    for d in data["devices"].values():
        d["peaks"] = PEAKS
    return data


def _every_row(column: int, value):
    def change(data):
        for r in data["records"]:
            for row in r["layers"]["rows"]:
                row[column] = value
    return change


def _first(key: str, value):
    def change(data):
        data["records"][0]["layers"][key] = value
    return change


def _device_peaks(data):
    for d in data["devices"].values():
        d["peaks"] = {**PEAKS, "matmul_fp32": {"flops_per_s": -1.0}}


CASES = {
    "time-fast": (_every_row(5, "fast"), "time_ms"),
    "time-negative": (_every_row(5, -2.0), "time_ms"),
    "flops-string": (_every_row(6, "many"), "flops"),
    "nodes-number": (_every_row(8, 5), "onnx_nodes"),
    "row-string": (_first("rows", ["x"]), "rows[0]"),
    "rows-object": (_first("rows", {"a": 1}), "rows"),
    "row-short": (_first("rows", [["a", "layer"]]), "2 values for 9 columns"),
    "columns-unknown": (_first("columns", ["nope"]), "columns"),
    "layer-peaks-zero": (_first("peaks", {**PEAKS, "copy": {"gb_per_s": 0}}), "copy.gb_per_s"),
    "layer-peaks-string": (_first("peaks", {**PEAKS, "matmul_fp32": {"flops_per_s": "fast"}}), "flops_per_s"),
    "device-peaks-negative": (_device_peaks, "flops_per_s"),
    "layers-string": (lambda d: d["records"][0].__setitem__("layers", "abc"), "layers"),
    "version-9": (_first("version", 9), "version"),
    "deep": (_first("notes", json.loads("[" * 100 + "]" * 100)), "nests"),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["show", "compare", "check", "plot"])
def test_damaged_layer_data_is_one_line(cli, tmp_path, name, command):
    change, needle = CASES[name]
    base, bad = tmp_path / "base.json", tmp_path / "bad.json"
    base.write_text(json.dumps(_profile()))
    data = _profile(slow=3.0)
    change(data)
    bad.write_text(json.dumps(data))
    argv = {"show": ("show", str(bad), "--layers"), "compare": ("compare", str(base), str(bad), "--layers"),
            "check": ("check", "--baseline", str(base), str(bad)),
            "plot": ("plot", "--roofline", str(bad), "--out", str(tmp_path / "figs"))}[command]
    code, out, err = cli(*argv)
    assert code == 2 and not out, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and err.startswith("hwprofile"), err
    assert needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "base.json"]


@pytest.mark.slow
def test_the_undamaged_profile_goes_through_every_command(cli, tmp_path):
    base, slow = tmp_path / "base.json", tmp_path / "slow.json"
    base.write_text(json.dumps(_profile()))
    slow.write_text(json.dumps(_profile(slow=3.0)))
    assert cli("show", str(slow), "--layers")[0] == 0
    assert cli("compare", str(base), str(slow), "--layers")[0] == 0
    code, out, err = cli("check", "--baseline", str(base), str(slow), "--json")
    assert code == 1 and json.loads(out)["layer_changes"], err
    code, out, err = cli("plot", "--roofline", str(slow), "--out", str(tmp_path / "figs"))
    assert code == 0 and len(out.split()) == len(json.loads(slow.read_text())["records"]), err
