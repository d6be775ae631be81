"""Per-layer reports: roofline classification, the gap row and the profiler's overhead, typed storage, diffs."""

import json
import math

import pytest

from hwprofile.analysis import changed_layers, compact, report, select_peaks, unavailable
from hwprofile.analysis._layers import GAP, breakdown_of, device_peaks, diff, expand
from hwprofile.errors import SchemaError
from hwprofile.profile import LayerBreakdown, typical_times

PEAKS = {"matmul_fp32": {"flops_per_s": 90e9, "flops_per_s_best": 100e9},
         "copy": {"gb_per_s": 9.0, "gb_per_s_best": 10.0}}


def raw(dw_ms=2.0, **extra):
    rows = [
        {"name": "stem", "kind": "layer", "op_type": "Conv", "group": 1, "depthwise": False, "time_ms": 1.0,
         "flops": 50_000_000, "bytes": 1_000_000, "onnx_nodes": ["c0"], "onnx_ops": ["Conv"]},
        {"name": "dw", "kind": "layer", "op_type": "Conv", "group": 32, "depthwise": True, "time_ms": dw_ms,
         "flops": 1_000_000, "bytes": 1_000_000, "onnx_nodes": ["c1", "r1"], "onnx_ops": ["Conv", "Relu"]},
        {"name": "reorder", "kind": "overhead", "op_type": "ReorderInput", "group": None, "depthwise": False,
         "time_ms": 0.5, "flops": 0, "bytes": 400, "onnx_nodes": []},
    ]
    return {"method": "test", "iterations": 5, "profiled_run_ms": 3.5 + dw_ms, "end_to_end_ms": 4.0,
            "element_bytes": 4, "time_source": "cpu", "rows": rows, **extra}


def rep_of(data, **kw):
    return report(data, model="m", runner="ort:cpu", device="cpu", batch=1, **{"peaks": PEAKS, **kw})


def test_peaks_use_the_best_rate_and_give_the_ridge():
    pk = device_peaks(PEAKS)
    assert (pk["flops_per_s"], pk["bytes_per_s"], pk["ridge"]) == (100e9, 10e9, 10.0) and not pk["disturbed"]
    assert device_peaks(None) is None
    assert device_peaks({"matmul_fp32": {"flops_per_s": 0}, "copy": {"gb_per_s": 1}}) is None  # no division by 0
    assert device_peaks({"flops_per_s": -1, "bytes_per_s": 1}) is None


def test_the_gap_row_is_the_profiled_run_minus_its_rows_and_the_overhead_is_stated():
    rep = rep_of(raw())
    rows = {r["name"]: r for r in rep.rows}
    assert rows["stem"]["intensity"] == pytest.approx(100.0) and rows["stem"]["bound"] == "compute"
    assert rows["dw"]["intensity"] == pytest.approx(2.0) and rows["dw"]["bound"] == "memory"
    assert rows["reorder"]["bound"] is None  # overhead is not a layer on the roofline
    # dw reached 2 MFLOP / 2 ms = 1 GFLOP/s under a roof of 2 flop/B x 10 GB/s = 20 GFLOP/s
    assert rows["dw"]["roof_share"] == pytest.approx(1e9 / 20e9) and not rows["dw"]["above_roof"]
    assert rep.end_to_end_ms == 4.0 and rep.layer_sum_ms == pytest.approx(3.5)
    gap = rep.rows[-1]
    assert gap["kind"] == "gap" and gap["name"] == GAP and gap["time_ms"] == pytest.approx(2.0)
    assert sum(r["time_ms"] for r in rep.rows) == pytest.approx(rep.profiled_run_ms)  # rows + gap = profiled run
    assert rep.profiler_overhead == pytest.approx(5.5 / 4.0 - 1)
    assert rep.memory_bound_time_fraction == pytest.approx(2.0 / 3.0)
    summary = {s["op_type"]: s for s in rep.summary}
    assert summary["Conv"]["layers"] == 2 and summary["Conv"]["memory_bound_ms"] == pytest.approx(2.0)
    assert any(n.startswith("profiler overhead: a profiled run took 5.5 ms against the clean 4 ms (+38%)")
               for n in rep.notes)


def test_a_negative_gap_says_why():
    rep = rep_of(raw(profiled_run_ms=3.0, time_source="gpu"))
    gap = rep.rows[-1]
    assert gap["time_ms"] == pytest.approx(-0.5)
    assert gap["name"].startswith("(gap, negative: the rows add up to more than the profiled run: TensorRT")


def test_a_version_1_breakdown_uses_the_record_latency_not_its_interleaved_time():
    old = dict(raw(), unprofiled_ms=12.9, end_to_end_ms=None, profiled_run_ms=None)
    old = {**compact(old), "version": 1}
    old.pop("end_to_end_ms", None)
    old["unprofiled_ms"] = 12.9
    rep = rep_of(old, end_to_end_ms=6.0)
    assert rep.end_to_end_ms == 6.0 and "before issue 20" in rep.notes[0]
    assert rep.rows[-1]["time_ms"] == pytest.approx(6.0 - 3.5)  # no profiled run: end-to-end minus the rows


def test_host_side_times_stay_off_the_roofline():
    rep = rep_of(raw(time_source="host_launch"))
    assert all(r["bound"] is None and r["roof_share"] is None for r in rep.rows)
    assert rep.memory_bound_time_fraction is None
    assert any("host-side launch times" in n and "not placed on the roofline" in n for n in rep.notes)


def test_a_layer_above_the_roof_is_flagged():
    rep = rep_of(raw(dw_ms=0.01))  # 1 MFLOP in 10 us: 200 GFLOP/s under a 20 GFLOP/s roof
    dw = next(r for r in rep.rows if r["name"] == "dw")
    assert dw["roof_share"] > 1 and dw["above_roof"]
    assert any("reached more than the measured roof" in n for n in rep.notes)


def test_peaks_measured_under_load_give_way_to_clean_ones_and_are_flagged_otherwise():
    busy = {**PEAKS, "disturbed": True, "foreign_cpu_cores": 1.2, "matmul_fp32": {"flops_per_s": 1e9}}
    clean_own = raw(peaks=PEAKS)
    assert rep_of(clean_own, peaks=busy).peaks["flops_per_s"] == 100e9  # the breakdown's own clean peaks
    rep = rep_of(raw(), peaks=busy)
    assert rep.peaks["disturbed"] and any("measured while other processes kept 1.2 CPU cores busy" in n
                                          for n in rep.notes)


def test_peaks_are_chosen_at_the_thread_count():
    two = {**PEAKS, "threads": 2, "at_threads": {"1": {**PEAKS, "threads": 1, "copy": {"gb_per_s": 5.0}}}}
    assert select_peaks(two, 2) is two and select_peaks(two, None) is two
    assert select_peaks(two, 1)["copy"]["gb_per_s"] == 5.0
    assert select_peaks(two, 4) is None  # never compared with peaks of another thread count
    gpu = {**two, "device": "cuda:0"}
    assert select_peaks(gpu, 4) is gpu  # threads do not matter on a GPU
    assert select_peaks({"error": "no torch"}, 1) is None


def test_the_drift_between_the_clean_phases_is_stated():
    rep = rep_of(raw(clean_after_ms=5.0))
    assert any("from 4 ms before profiling to 5 ms after (+25%)" in n for n in rep.notes)
    assert not any("before profiling" in n for n in rep_of(raw(clean_after_ms=4.1)).notes)


def test_compact_round_trip_is_typed():
    c = compact(raw(peaks=PEAKS))
    assert isinstance(c["rows"][0], list) and c["version"] == 2 and c["columns"][0] == "name"
    back = expand(c)
    assert [r["name"] for r in back["rows"]] == ["stem", "dw", "reorder"] and back["peaks"] == PEAKS
    assert isinstance(breakdown_of(c), LayerBreakdown) and LayerBreakdown.model_validate(c).to_dict() == c
    assert rep_of(c).rows[1]["bound"] == "memory"


def test_the_rounds_and_clean_blocks_are_stored_and_read_back(tmp_path):
    """A breakdown measured in rounds keeps its clean blocks through a profile record and a layers file."""
    from hwprofile.profile import layers_file_from_data, layers_file_header

    c = compact(raw(rounds=3, clean_blocks_ms=[4.0, 4.2, 3.9, 4.1], clean_after_ms=4.1))
    assert c["rounds"] == 3 and c["clean_blocks_ms"] == [4.0, 4.2, 3.9, 4.1]
    rep = rep_of(c)
    assert rep.rounds == 3 and rep.clean_blocks_ms == [4.0, 4.2, 3.9, 4.1]
    assert any(n.startswith("3 rounds of profiled runs") for n in rep.notes)
    assert not any("moved between" in n for n in rep.notes)  # 4.2 / 3.9 - 1 = 8%: within the drift allowed
    saved = json.loads(json.dumps({**layers_file_header(), **rep.to_dict(), "model": "m", "runner": "ort:cpu",
                                   "device": "cpu", "batch": 1}))
    back = layers_file_from_data(saved).breakdown()
    assert back.rounds == 3 and back.clean_blocks_ms == [4.0, 4.2, 3.9, 4.1]
    for bad in ([0.0], ["x"], [1.0] * 65, "4.0"):
        with pytest.raises(SchemaError, match="clean_blocks_ms"):
            breakdown_of({**c, "clean_blocks_ms": bad})


@pytest.mark.parametrize("change,field", [
    (lambda c: c["rows"][0].__setitem__(5, "fast"), "rows[0].time_ms"),
    (lambda c: c["rows"][0].__setitem__(5, -1.0), "rows[0].time_ms"),
    (lambda c: c["rows"][1].pop(), "rows[1] has 8 values"),
    (lambda c: c.__setitem__("rows", "x"), "rows"),
    (lambda c: c.__setitem__("columns", ["name", "kind"]), "values for 2 columns"),
    (lambda c: c["peaks"]["copy"].__setitem__("gb_per_s", 0), "copy.gb_per_s"),
    (lambda c: c.__setitem__("version", 9), "version"),
])
def test_a_damaged_breakdown_is_one_line_naming_the_field(change, field):
    c = compact(raw(peaks={"matmul_fp32": {"flops_per_s": 1e9}, "copy": {"gb_per_s": 1.0}}))
    change(c)
    with pytest.raises(SchemaError) as err:
        breakdown_of(c)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_an_unavailable_breakdown_has_no_rows():
    bd = breakdown_of(unavailable("per-layer times failed: RuntimeError: boom"))
    assert bd.error.endswith("boom") and bd.rows == []


def test_diff_names_the_slowed_layer_first():
    changes = diff(compact(raw()), raw(dw_ms=6.0))
    assert changes[0]["name"] == "dw" and changes[0]["delta_ms"] == pytest.approx(4.0)
    assert changes[0]["ratio"] == pytest.approx(3.0)
    assert all(abs(c["delta_ms"]) < 1e-9 for c in changes[1:])


def test_changed_layers_skips_records_without_layers():
    class R:
        def __init__(self, layers, ms):
            self.layers, self.median_ms, self.label, self.runner, self.batch = layers, ms, "m", "ort:cpu", 1
    found = changed_layers([(R(raw(), 3.5), R(raw(4.0), 5.5)), (R(None, 1), R(raw(), 1)),
                            (R(unavailable("x"), 1), R(raw(), 1))])
    assert len(found) == 1 and found[0]["changes"][0]["name"] == "dw" and "dw [Conv] +2 ms (2.00x)" in found[0]["text"]


def test_typical_runs_drop_disturbed_ones():
    runs = [{"a": 1.0, "b": 1.0}] * 6 + [{"a": 1.0, "b": 50.0}, {"a": 30.0, "b": 1.0}]
    totals = [sum(r.values()) for r in runs]
    mean, med, total = typical_times(runs, totals)
    assert mean == {"a": 1.0, "b": 1.0} and total == 2.0 and med["b"] == 1.0
    assert math.isclose(sum(mean.values()), total)


def test_growth_by_strategy_and_scale():
    from hwprofile.analysis import growth
    from hwprofile.profile import Profile, Record

    def rec(strategy, s, dw_ms, layers=True):
        return Record(device_id="d", model="M", strategy=strategy, scale=s, batch=1, runner="ort:cpu",
                      precision="fp32", mode="infer", resolution=224, flops=int(1e8 * s), params=1, acts=int(1e6 * s),
                      status="ok", latency={"median_ms": 3.5 + dw_ms},
                      layers=compact(raw(dw_ms, peaks=PEAKS)) if layers else unavailable("failed"))

    profile = Profile(devices={"d": {}}, sweeps=[], records=[rec(None, 1.0, 1.0), rec("w", 2.0, 3.0),
                                                              rec("d", 2.0, 2.0), rec("w", 8.0, 1.0, False), Record(
        device_id="d", model="M", strategy="w", scale=4.0, batch=1, runner="ort:cpu", precision="fp32",
        mode="infer", resolution=224, flops=1, params=1, acts=1, status="ok", latency={"median_ms": 1.0})])
    rows = growth(profile)
    w = [r for r in rows if r["strategy"] == "w"]
    assert [r["scale"] for r in w] == [1.0, 2.0]  # the unscaled model opens each series; no layers: no row
    assert w[0]["memory_bound_time_fraction"] == pytest.approx(1 / 2)
    assert w[1]["memory_bound_time_fraction"] == pytest.approx(3 / 4)
    assert {r["strategy"] for r in rows} == {"w", "d"}
