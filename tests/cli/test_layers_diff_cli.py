"""A regression comes with its cause: ``check`` and ``compare --layers`` name the layers that slowed."""

import json
import shutil

import pytest

from helpers import fixture_profile as p
from layer_fixtures import tiny_cnn

SLOWED = "stage2.dw"


def _rows(total_ms: float, extra_ms: float = 0.0) -> dict:
    """A compact breakdown adding up to ``total_ms``, ``extra_ms`` of it in the slowed layer."""
    base = total_ms - extra_ms
    parts = [("stem", "Conv", 0.2), ("stage1.dw", "Conv", 0.15), (SLOWED, "Conv", 0.15), ("stage2.pw", "Conv", 0.4),
             ("head", "Gemm", 0.1)]
    rows = [[n, "layer", op, None, "dw" in n, base * f + (extra_ms if n == SLOWED else 0.0), 1000, 1000, [n]]
            for n, op, f in parts]
    return {"version": 1, "method": "synthetic", "iterations": 10, "profiled_run_ms": total_ms,
            "unprofiled_ms": None, "element_bytes": 4, "peaks": None,
            "columns": ["name", "kind", "op_type", "group", "depthwise", "time_ms", "flops", "bytes", "onnx_nodes"],
            "rows": rows}


def with_layers(src: str, dst, base: dict | None = None) -> str:
    data = json.loads(open(src).read())
    for i, r in enumerate(data["records"]):
        ms = r["latency"]["median_ms"]
        r["layers"] = _rows(ms, ms - base["records"][i]["latency"]["median_ms"] if base else 0.0)
    dst.write_text(json.dumps(data))
    return str(dst)


def test_check_names_the_slowed_layer(cli, tmp_path):
    base = with_layers(p("cpu-a.json"), tmp_path / "base.json")
    slow = with_layers(p("cpu-slow.json"), tmp_path / "slow.json", json.loads(open(p("cpu-a.json")).read()))
    code, out, err = cli("check", "--baseline", base, slow, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["layer_changes"], err
    for found in data["layer_changes"]:
        top = found["changes"][0]
        assert top["name"] == SLOWED and top["delta_ms"] > 0 and top["ratio"] > 1
        assert all(abs(c["delta_ms"]) < abs(top["delta_ms"]) for c in found["changes"][1:])
    assert f"layers that changed most: {SLOWED}" in err
    code, out, _ = cli("check", "--baseline", base, slow)
    assert code == 1 and "Layers whose time changed most" in out and SLOWED in out


def test_check_without_layers_says_nothing_about_them(cli):
    code, out, err = cli("check", "--baseline", p("cpu-a.json"), p("cpu-slow.json"), "--json")
    assert code == 1 and json.loads(out)["layer_changes"] == [] and "changed most" not in err


@pytest.mark.slow
def test_a_real_model_with_one_layer_made_slower(cli, tmp_path):
    """tiny.onnx twice, the second with a 7x7 pointwise conv: run --layers on each, then check and
    compare --layers name that conv (ORT's NCHWc layer p_nchwc, holding ONNX nodes pw and add)."""
    pytest.importorskip("onnxruntime")
    profiles = {}
    for name, slow in (("base", False), ("slow", True)):
        folder = tmp_path / name
        folder.mkdir()
        model = tiny_cnn(folder / "tiny.onnx", channels=32, res=48, slow=slow)
        out = tmp_path / f"{name}.json"
        code, _, err = cli("run", "--device", "cpu", "--runners", "ort:cpu", "--models", model, "--batch-sizes", "1",
                           "--seconds-per-config", "0.5", "--repeats", "3", "--layers", "10", "--out", str(out),
                           "--quiet", "--threads", "1", "--retries", "0", "--no-peaks")
        assert code == 0, err
        profiles[name] = str(out)
    record = json.loads(open(profiles["base"]).read())["records"][0]
    assert record["layers"]["columns"][0] == "name" and len(record["layers"]["rows"]) >= 5
    code, out, err = cli("check", "--baseline", profiles["base"], profiles["slow"], "--json")
    assert code == 1, err
    top = json.loads(out)["layer_changes"][0]["changes"][0]
    assert "pw" in top["onnx_nodes"] and top["ratio"] > 2
    code, out, err = cli("compare", profiles["base"], profiles["slow"], "--layers", "--json")
    assert code == 0, err
    assert "pw" in json.loads(out)["comparisons"][0]["layer_changes"][0]["changes"][0]["onnx_nodes"]
    code, out, err = cli("show", profiles["slow"], "--layers")
    assert code == 0 and "memory-bound time" in out, err


def test_compare_layers_needs_breakdowns(cli, tmp_path):
    a = tmp_path / "a.json"
    shutil.copy(p("cpu-a.json"), a)
    code, _, err = cli("compare", str(a), p("cpu-a2.json"), "--layers")
    assert code == 2 and "no joined record has a layer breakdown" in err
