"""``plot --roofline``: one figure per model and runner, names sanitised, nothing replaced."""

import json

import pytest

from hwprofile.layers import report

pytest.importorskip("matplotlib")

PEAKS = {"flops_per_s": 100e9, "bytes_per_s": 10e9}


def _report(model="Efficient/Net ../x", runner="ort:cpu") -> dict:
    rows = [{"name": f"l{i}", "kind": "layer", "op_type": op, "depthwise": dw, "time_ms": 0.5, "flops": f,
             "bytes": 1_000_000, "onnx_nodes": [f"n{i}"]}
            for i, (op, dw, f) in enumerate([("Conv", False, 50_000_000), ("Conv", True, 1_000_000),
                                              ("Gemm", False, 2_000_000), ("Sigmoid+Mul", False, 0)])]
    return report({"rows": rows}, model=model, runner=runner, device="cpu", batch=1, end_to_end_ms=2.2,
                  peaks=PEAKS).to_dict()


def test_roofline_from_a_layers_file(cli, tmp_path):
    src = tmp_path / "layers.json"
    src.write_text(json.dumps(_report(), default=str))
    out = tmp_path / "figs"
    code, text, err = cli("plot", "--roofline", str(src), "--out", str(out))
    assert code == 0, err
    (path,) = [line for line in text.splitlines() if line]
    assert path.startswith(str(out)) and "/" not in path[len(str(out)) + 1:] and ".." not in path
    assert path.endswith("__ort-cpu__b1.png")
    code, text2, _ = cli("plot", "--roofline", str(src), "--out", str(out))
    assert code == 0 and text2.strip() != path and text2.strip().endswith("-2.png")  # never replaced
    assert len(list(out.iterdir())) == 2


def test_roofline_from_a_profile_without_layers_is_a_user_error(cli, tmp_path):
    from helpers import fixture_profile as p

    code, _, err = cli("plot", "--roofline", p("cpu-a.json"), "--out", str(tmp_path))
    assert code == 2 and "run --layers" in err
