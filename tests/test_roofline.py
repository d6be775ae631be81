"""Roofline shares: every record's share of the peaks (flagged above 100% and when the peaks were measured under
load, at the record's thread count); ``plot --roofline``: one figure per model and runner, names sanitised,
nothing replaced, its input read through the typed, guarded parsers."""

import json
import re

import pytest

from hwprofile.analysis import _roofline as roofline
from hwprofile.analysis import report
from hwprofile.profile import layers_file_header
from synthetic import synthetic_profile

pytest.importorskip("matplotlib")

PEAKS = {"flops_per_s": 100e9, "bytes_per_s": 10e9}


def _report(model="Efficient/Net ../x", runner="ort:cpu", **extra) -> dict:
    rows = [{"name": f"l{i}", "kind": "layer", "op_type": op, "depthwise": dw, "time_ms": 0.5, "flops": f,
             "bytes": 1_000_000, "onnx_nodes": [f"n{i}"]}
            for i, (op, dw, f) in enumerate([("Conv", False, 50_000_000), ("Conv", True, 1_000_000),
                                              ("Gemm", False, 2_000_000), ("Sigmoid+Mul", False, 0)])]
    data = {"rows": rows, "profiled_run_ms": 2.2, "end_to_end_ms": 2.0, **extra}
    rep = report(data, model=model, runner=runner, device="cpu", batch=1, peaks=PEAKS)
    return {**layers_file_header(), **rep.to_dict()}


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


def test_a_layers_file_from_before_its_schema_is_still_read(cli, tmp_path):
    old = {k: v for k, v in _report().items() if k not in layers_file_header()}
    src = tmp_path / "old.json"
    src.write_text(json.dumps(old, default=str))
    code, text, err = cli("plot", "--roofline", str(src), "--out", str(tmp_path / "figs"))
    assert code == 0 and text.strip().endswith(".png"), err


def test_tex_in_a_model_or_op_name_is_shown_as_text(cli, tmp_path):
    data = _report(model="$x^{$", runner="ort:cpu")
    data["rows"][0]["op_type"] = "$\\frac{"
    src = tmp_path / "tex.json"
    src.write_text(json.dumps(data, default=str))
    code, text, err = cli("plot", "--roofline", str(src), "--out", str(tmp_path / "figs"))
    assert code == 0 and text.strip().endswith(".png"), err
    assert roofline.plain_text("$x^{$") == r"\$x^{\$"


def _damaged(change):
    data = json.loads(json.dumps(_report(), default=str))
    change(data)
    return data


DAMAGED = {
    "zero-peak": (lambda d: d["peaks"].update(flops_per_s=0), "peaks"),
    "negative-bandwidth": (lambda d: d["peaks"].update(bytes_per_s=-5.0), "peaks"),
    "peak-string": (lambda d: d["peaks"].update(flops_per_s="fast"), "peaks"),
    "time-string": (lambda d: d["rows"][0].update(time_ms="fast"), "rows[0].time_ms"),
    "rows-not-a-list": (lambda d: d.update(rows={"a": 1}), "rows"),
    "row-not-an-object": (lambda d: d.update(rows=[5]), "rows[0]"),
    "name-missing": (lambda d: d["rows"][1].pop("name"), "rows[1].name"),
    "batch-missing": (lambda d: d.pop("batch"), "batch"),
    "flops-negative": (lambda d: d["rows"][0].update(flops=-1), "rows[0].flops"),
    "schema-version-9": (lambda d: d.update(schema_version=9), "schema version"),
    "deep-nesting": (lambda d: d.update(notes=json.loads("[" * 200 + "]" * 200)), "nests"),
}


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_a_damaged_layers_file_is_one_line_exit_2(cli, tmp_path, name):
    change, needle = DAMAGED[name]
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(_damaged(change)))
    code, out, err = cli("plot", "--roofline", str(src), "--out", str(tmp_path / "figs"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err and not out and not (tmp_path / "figs").exists() or not any((tmp_path / "figs").iterdir())


def test_nan_and_deep_json_text_are_refused(cli, tmp_path):
    src = tmp_path / "nan.json"
    src.write_text(json.dumps(_report()).replace('"time_ms": 0.5', '"time_ms": NaN', 1))
    code, _, err = cli("plot", "--roofline", str(src), "--out", str(tmp_path / "figs"))
    assert code == 2 and "not valid JSON" in err and len(err.strip().splitlines()) == 1
    src.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = cli("plot", "--roofline", str(src), "--out", str(tmp_path / "figs"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_host_side_layer_times_get_no_roofline(cli, tmp_path):
    src = tmp_path / "cuda.json"
    src.write_text(json.dumps(_report(runner="ort:cuda", time_source="host_launch"), default=str))
    code, _, err = cli("plot", "--roofline", str(src), "--out", str(tmp_path / "figs"))
    assert code == 2 and "host-side launch times" in err


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
    assert s["compute_peak"] == "matmul_fp32" and not s["peaks_disturbed"]
    assert s["above_peak"] == [k for k in ("compute_share", "bandwidth_share") if s[k] > 1]
    train = roofline.shares(r.replace(mode="train"), CPU_PEAKS)
    assert train["compute_share"] == pytest.approx(3 * s["compute_share"])
    half = roofline.shares(r.replace(precision="fp16"), CPU_PEAKS)
    assert half["compute_share"] is None and half["bandwidth_share"] == pytest.approx(s["bandwidth_share"] / 2)
    none = roofline.shares(r, None)
    assert (none["compute_share"], none["bandwidth_share"], none["compute_peak"]) == (None, None, None)
    best = roofline.shares(r, {**CPU_PEAKS, "matmul_fp32": {"flops_per_s": 1e11, "flops_per_s_best": 2e11}})
    assert best["compute_share"] == pytest.approx(s["compute_share"] / 2)  # a peak is its best rate


def test_a_share_above_one_is_flagged_never_a_plain_share():
    r = synthetic_profile(noise=0.0).records[3]
    low = {**CPU_PEAKS, "matmul_fp32": {"flops_per_s": 1e3}, "copy": {"gb_per_s": 1e9}, "disturbed": True}
    s = roofline.shares(r, low)
    assert s["compute_share"] > 1 and s["above_peak"] == ["compute_share"] and s["peaks_disturbed"]
    assert roofline.share_text(s["compute_share"]).endswith("%!") and roofline.share_text(0.42) == "42%"


def test_gpu_fp32_uses_the_tf32_peak_and_fp16_its_own():
    gpu = {"device": "cuda:0", "matmul_fp32": {"flops_per_s": 1}, "matmul_tf32": {"flops_per_s": 2},
           "matmul_fp16": {"flops_per_s": 3}}
    assert roofline.compute_peak(gpu, "fp32") == (2.0, "matmul_tf32")
    assert roofline.compute_peak(gpu, "fp16") == (3.0, "matmul_fp16")
    fp32_only = {"device": "cuda:0", "matmul_fp32": {"flops_per_s": 1}}
    assert roofline.compute_peak(fp32_only, "fp32") == (1.0, "matmul_fp32")


@pytest.mark.parametrize("shares,expected", [
    ({"compute_share": 0.6, "bandwidth_share": 0.1}, "compute"),
    ({"compute_share": 0.1, "bandwidth_share": 0.7}, "memory"),
    ({"compute_share": 0.5, "bandwidth_share": 2.0}, "both"),
    ({"compute_share": 0.1, "bandwidth_share": None}, None),
])
def test_roof(shares, expected):
    assert roofline.roof(shares) == expected


def _with_peaks(prof, peaks):
    prof.devices["synthetic-cpu"] = prof.device("synthetic-cpu").model_copy(update={"peaks": peaks})
    return prof


def test_run_summary_names_the_records_near_each_roof():
    prof = synthetic_profile(noise=0.0, batches=(1,))
    assert roofline.summary_lines(prof) == ["roofline: no device peaks in this profile"]
    fastest = max(prof.records, key=lambda r: r.flops / r.median_ms)
    flops_s = 2 * fastest.flops / (fastest.median_ms / 1e3) / 0.9  # the fastest record reaches 90% of it
    _with_peaks(prof, {"device": "cpu", "matmul_fp32": {"flops_per_s": flops_s}, "copy": {"gb_per_s": 1e6}})
    (line,) = roofline.summary_lines(prof)
    assert line.startswith("roofline (near = at least 50% of a peak): ") and "near the compute roof" in line
    assert f"{fastest.label} b1 ort:cpu" in line and "below both roofs" in line
    assert line.endswith("; highest: 90% of peak compute, 0% of copy bandwidth")
    _with_peaks(prof, {"error": "peaks could not be measured: no torch"})
    assert roofline.summary_lines(prof) == ["roofline: no device peaks in this profile"]


def test_the_summary_counts_records_above_a_peak_apart_and_flags_them():
    """The summary once said "17 below both roofs (highest: 107% of peak compute)"."""
    prof = synthetic_profile(noise=0.0, batches=(1,))
    fastest = max(prof.records, key=lambda r: r.flops / r.median_ms)
    flops_s = 2 * fastest.flops / (fastest.median_ms / 1e3) / 1.07  # the fastest record reaches 107%
    _with_peaks(prof, {"device": "cpu", "matmul_fp32": {"flops_per_s": flops_s}, "copy": {"gb_per_s": 1e6},
                       "disturbed": True, "foreign_cpu_cores": 1.0})
    (line,) = roofline.summary_lines(prof)
    above = next(part for part in line.split("; ") if "above a measured peak!" in part)
    assert f"{fastest.label} b1 ort:cpu" in above
    assert "highest: 107%! of peak compute" in line and "shares are too high" in line and "!: above" in line
    counts = [int(n) for n in re.findall(r"(?:: |; )(\d+) (?:near |above a measured peak!|below both)", line)]
    assert sum(counts) == len(prof.records)  # every record counted once


def test_records_are_compared_with_peaks_at_their_thread_count():
    prof = synthetic_profile(noise=0.0, batches=(1,))  # records without a thread count: any peaks apply
    two = {"device": "cpu", "threads": 2, "matmul_fp32": {"flops_per_s": 1e11}, "copy": {"gb_per_s": 20.0}}
    one_thread = [r.replace(settings={"threads": 1}) for r in prof.records]
    prof.records = one_thread
    _with_peaks(prof, two)
    assert roofline.record_peaks(prof, prof.records[0]) is None
    (line,) = roofline.summary_lines(prof)
    assert "measured at 2 threads, not at these records' thread count" in line
    _with_peaks(prof, {**two, "at_threads": {"1": {**two, "threads": 1, "copy": {"gb_per_s": 7.0}}}})
    assert roofline.record_peaks(prof, prof.records[0])["copy"]["gb_per_s"] == 7.0
    prof.records = [r.replace(settings={"threads": 3}) if i % 2 else r for i, r in enumerate(one_thread)]
    (line,) = roofline.summary_lines(prof)  # records without peaks at their count are counted apart
    assert line.split("; highest")[0].endswith(f"; {len(prof.records) // 2} without peaks at their thread count")


def test_measure_peaks_reports_a_failure_instead_of_raising(monkeypatch):
    from hwprofile.measure import _core as core

    monkeypatch.setattr(core.sys, "executable", "/nonexistent/python")
    assert "could not be measured" in core.measure_peaks("cpu")["error"]
