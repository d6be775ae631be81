"""hwprofile.roofline: every record's share of the peaks; ``plot --roofline``: one figure per model and runner,
names sanitised, nothing replaced."""

import json

import pytest

from hwprofile import roofline
from hwprofile.layers import report
from synthetic import synthetic_profile

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


# ------------------------------------------------------------------------------ records on the roofline

CPU_PEAKS = {"device": "cpu", "matmul_fp32": {"flops_per_s": 1e11}, "copy": {"gb_per_s": 20.0}}


def test_shares_follow_the_stated_formulas():
    r = synthetic_profile(noise=0.0).records[3]
    s = roofline.shares(r, CPU_PEAKS)
    seconds = r.median_ms / 1e3
    assert s["compute_share"] == pytest.approx(2 * r.flops * r.batch / seconds / 1e11)
    assert s["bandwidth_share"] == pytest.approx(2 * r.acts * r.batch * 4 / seconds / 20e9)
    assert s["compute_peak"] == "matmul_fp32"
    train = roofline.shares(r.replace(mode="train"), CPU_PEAKS)
    assert train["compute_share"] == pytest.approx(3 * s["compute_share"])
    half = roofline.shares(r.replace(precision="fp16"), CPU_PEAKS)
    assert half["compute_share"] is None and half["bandwidth_share"] == pytest.approx(s["bandwidth_share"] / 2)
    assert roofline.shares(r, None) == {"compute_share": None, "bandwidth_share": None, "compute_peak": None}


def test_gpu_fp32_uses_the_tf32_peak_and_fp16_its_own():
    gpu = {"device": "cuda:0", "matmul_fp32": {"flops_per_s": 1}, "matmul_tf32": {"flops_per_s": 2},
           "matmul_fp16": {"flops_per_s": 3}}
    assert roofline.compute_peak(gpu, "fp32") == (2.0, "matmul_tf32")
    assert roofline.compute_peak(gpu, "fp16") == (3.0, "matmul_fp16")
    assert roofline.compute_peak({"device": "cuda:0", "matmul_fp32": {"flops_per_s": 1}}, "fp32") == (1.0, "matmul_fp32")


@pytest.mark.parametrize("shares,expected", [
    ({"compute_share": 0.6, "bandwidth_share": 0.1}, "compute"),
    ({"compute_share": 0.1, "bandwidth_share": 0.7}, "memory"),
    ({"compute_share": 0.5, "bandwidth_share": 2.0}, "both"),
    ({"compute_share": 0.1, "bandwidth_share": None}, None),
])
def test_roof(shares, expected):
    assert roofline.roof(shares) == expected


def test_run_summary_names_the_records_near_each_roof():
    prof = synthetic_profile(noise=0.0, batches=(1,))
    assert roofline.summary_lines(prof) == ["roofline: no device peaks in this profile"]
    fastest = min(prof.records, key=lambda r: r.median_ms)
    flops_s = 2 * fastest.flops / (fastest.median_ms / 1e3) / 0.9  # the fastest record reaches 90% of it
    peaks = {"device": "cpu", "matmul_fp32": {"flops_per_s": flops_s}, "copy": {"gb_per_s": 1e6}}
    prof.devices["synthetic-cpu"] = prof.device("synthetic-cpu").model_copy(update={"peaks": peaks})
    (line,) = roofline.summary_lines(prof)
    assert line.startswith("roofline (near = at least 50% of a peak): ") and "near the compute roof" in line
    assert f"{fastest.label} b1 ort:cpu" in line and "below both roofs" in line
    prof.devices["synthetic-cpu"] = prof.device("synthetic-cpu").model_copy(
        update={"peaks": {"error": "peaks could not be measured: no torch"}})
    assert roofline.summary_lines(prof) == ["roofline: no device peaks in this profile"]


def test_measure_peaks_reports_a_failure_instead_of_raising(monkeypatch):
    monkeypatch.setattr(roofline.sys, "executable", "/nonexistent/python")
    assert "could not be measured" in roofline.measure_peaks("cpu")["error"]
