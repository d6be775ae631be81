"""Per-layer reports: roofline classification, the gap row, compact storage, diffs."""

import math

import pytest

from hwprofile.layers import changed_layers, compact, device_peaks, diff, expand, report
from hwprofile.measure.stats import typical_times

PEAKS = {"matmul_fp32": {"flops_per_s": 90e9, "flops_per_s_best": 100e9},
         "copy": {"gb_per_s": 9.0, "gb_per_s_best": 10.0}}


def raw(dw_ms=2.0):
    rows = [
        {"name": "stem", "kind": "layer", "op_type": "Conv", "group": 1, "depthwise": False, "time_ms": 1.0,
         "flops": 50_000_000, "bytes": 1_000_000, "onnx_nodes": ["c0"], "onnx_ops": ["Conv"]},
        {"name": "dw", "kind": "layer", "op_type": "Conv", "group": 32, "depthwise": True, "time_ms": dw_ms,
         "flops": 1_000_000, "bytes": 1_000_000, "onnx_nodes": ["c1", "r1"], "onnx_ops": ["Conv", "Relu"]},
        {"name": "reorder", "kind": "overhead", "op_type": "ReorderInput", "group": None, "depthwise": False,
         "time_ms": 0.5, "flops": 0, "bytes": 400, "onnx_nodes": []},
    ]
    return {"method": "test", "iterations": 5, "profiled_run_ms": 3.6, "element_bytes": 4, "rows": rows}


def test_peaks_use_the_best_rate_and_give_the_ridge():
    pk = device_peaks(PEAKS)
    assert pk == {"flops_per_s": 100e9, "bytes_per_s": 10e9, "ridge": 10.0}
    assert device_peaks(None) is None


def test_report_classifies_and_adds_the_gap_row():
    rep = report(raw(), model="m", runner="ort:cpu", device="cpu", batch=1, end_to_end_ms=4.0, peaks=PEAKS)
    rows = {r["name"]: r for r in rep.rows}
    assert rows["stem"]["intensity"] == pytest.approx(100.0) and rows["stem"]["bound"] == "compute"
    assert rows["dw"]["intensity"] == pytest.approx(2.0) and rows["dw"]["bound"] == "memory"
    assert rows["reorder"]["bound"] is None  # overhead is not a layer on the roofline
    # dw reached 2 MFLOP / 2 ms = 1 GFLOP/s under a roof of 2 flop/B x 10 GB/s = 20 GFLOP/s
    assert rows["dw"]["roof_share"] == pytest.approx(1e9 / 20e9)
    assert rep.layer_sum_ms == pytest.approx(3.5)
    gap = rep.rows[-1]
    assert gap["kind"] == "gap" and gap["time_ms"] == pytest.approx(0.5)
    assert sum(r["time_ms"] for r in rep.rows) == pytest.approx(rep.end_to_end_ms)
    assert rep.memory_bound_time_fraction == pytest.approx(2.0 / 3.0)
    summary = {s["op_type"]: s for s in rep.summary}
    assert summary["Conv"]["layers"] == 2 and summary["Conv"]["memory_bound_ms"] == pytest.approx(2.0)
    assert "profiling overhead" in rep.notes[0]


def test_interleaved_unprofiled_time_is_the_end_to_end():
    data = dict(raw(), unprofiled_ms=3.0)
    rep = report(data, model="m", runner="ort:cpu", device="cpu", batch=1, end_to_end_ms=9.0, peaks=PEAKS)
    assert rep.end_to_end_ms == 3.0


def test_without_peaks_nothing_is_classified():
    rep = report(raw(), model="m", runner="r", device="cpu", batch=1, end_to_end_ms=None)
    assert rep.memory_bound_time_fraction is None and all(r["bound"] is None for r in rep.rows)
    assert rep.rows[-1]["kind"] != "gap"


def test_compact_round_trip():
    c = compact(dict(raw(), peaks=PEAKS))
    assert isinstance(c["rows"][0], list)
    back = expand(c)
    assert [r["name"] for r in back["rows"]] == ["stem", "dw", "reorder"] and back["peaks"] == PEAKS
    assert report(c, model="m", runner="r", device="cpu", batch=1, end_to_end_ms=4.0).rows[1]["bound"] == "memory"


def test_diff_names_the_slowed_layer_first():
    changes = diff(compact(raw()), raw(dw_ms=6.0))
    assert changes[0]["name"] == "dw" and changes[0]["delta_ms"] == pytest.approx(4.0)
    assert changes[0]["ratio"] == pytest.approx(3.0)
    assert all(abs(c["delta_ms"]) < 1e-9 for c in changes[1:])


def test_changed_layers_skips_records_without_layers():
    class R:
        def __init__(self, layers, ms):
            self.layers, self.median_ms, self.label, self.runner, self.batch = layers, ms, "m", "ort:cpu", 1
    found = changed_layers([(R(raw(), 3.5), R(raw(4.0), 5.5)), (R(None, 1), R(raw(), 1))])
    assert len(found) == 1 and found[0]["changes"][0]["name"] == "dw" and "dw [Conv] +2 ms (2.00x)" in found[0]["text"]


def test_typical_runs_drop_disturbed_ones():
    runs = [{"a": 1.0, "b": 1.0}] * 6 + [{"a": 1.0, "b": 50.0}, {"a": 30.0, "b": 1.0}]
    totals = [sum(r.values()) for r in runs]
    mean, med, total = typical_times(runs, totals)
    assert mean == {"a": 1.0, "b": 1.0} and total == 2.0 and med["b"] == 1.0
    assert math.isclose(sum(mean.values()), total)


def test_growth_by_strategy_and_scale():
    from hwprofile.layers import growth
    from hwprofile.profile import Profile, Record

    def rec(strategy, s, dw_ms):
        return Record(device_id="d", model="M", strategy=strategy, scale=s, batch=1, runner="ort:cpu",
                      precision="fp32", mode="infer", resolution=224, flops=int(1e8 * s), params=1, acts=int(1e6 * s),
                      status="ok", latency={"median_ms": 3.5 + dw_ms}, layers=compact(dict(raw(dw_ms), peaks=PEAKS)))

    profile = Profile(devices={"d": {}}, sweeps=[], records=[rec(None, 1.0, 1.0), rec("w", 2.0, 3.0),
                                                              rec("d", 2.0, 2.0), Record(
        device_id="d", model="M", strategy="w", scale=4.0, batch=1, runner="ort:cpu", precision="fp32",
        mode="infer", resolution=224, flops=1, params=1, acts=1, status="ok", latency={"median_ms": 1.0})])
    rows = growth(profile)
    w = [r for r in rows if r["strategy"] == "w"]
    assert [r["scale"] for r in w] == [1.0, 2.0]  # the unscaled model opens each series; no layers: no row
    assert w[0]["memory_bound_time_fraction"] == pytest.approx(1 / 2)
    assert w[1]["memory_bound_time_fraction"] == pytest.approx(3 / 4)
    assert {r["strategy"] for r in rows} == {"w", "d"}
