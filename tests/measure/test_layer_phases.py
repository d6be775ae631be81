"""Per-layer times are measured in a child of their own, in phases that never overlap (issue 20): the clean
latency alone, the profiled runs alone (in rounds), the clean latency again after each round. Scripted latencies
(the fake runner) make the checks exact on a loaded machine: the clean end-to-end is the clean runs' latency, not
one disturbed by the profiler, and profiling never reaches the record's timing or memory reading."""

import pytest

from hwprofile.analysis import from_raw, report
from hwprofile.measure import measure
from hwprofile.profile import TimingConfig, Workload

FAST = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=5, budget_s=0.2, throughput_window_s=0.0)
LAYERS = {"iterations": 6, "onnx_path": None, "peaks": None}


pytestmark = pytest.mark.usefixtures("fake_runner")


def _fake(**options):
    return Workload("spec", {"name": "fake"}, None, 1, 8, options={"latencies_ms": [1.0], **options})


def test_the_phases_never_interleave_and_the_end_to_end_is_the_clean_latency():
    m = measure("fake", _fake(profiled_latencies_ms=[1.5]), FAST, layers=LAYERS)
    assert m.ok and m.latency["median_ms"] == 1.0
    phases = m.layers["phases"]
    first = phases.index("profiled")
    last = len(phases) - 1 - phases[::-1].index("profiled")
    assert phases[first:last + 1] == ["profiled"] * 6  # no clean run between profiled ones
    assert set(phases[:first]) == {"clean"} and set(phases[last + 1:]) == {"clean"}  # clean before and after
    assert m.layers["end_to_end_ms"] == 1.0 and m.layers["clean_after_ms"] == 1.0
    rep = report(from_raw(m.layers), model="fake", runner="fake", device="cpu", batch=1)
    assert rep.end_to_end_ms == 1.0 and rep.profiled_run_ms == 1.5
    assert rep.profiler_overhead == pytest.approx(0.5)
    gap = rep.rows[-1]
    assert gap["kind"] == "gap" and gap["time_ms"] == pytest.approx(1.5 - 0.75 * 1.5)  # rows + gap = profiled run


@pytest.mark.parametrize("fault,status", [("raise", "failed"), ("segfault", "crashed")])
def test_a_per_layer_failure_never_fails_the_timing(fault, status):
    m = measure("fake", _fake(layers_fault=fault), FAST, layers=LAYERS)
    assert m.ok and m.latency["median_ms"] == 1.0
    assert m.layers["error"].startswith(f"per-layer times {status}")


def test_profiling_stays_out_of_the_records_memory_reading():
    """The per-layer child touches 300 MiB more; the record's readings come from the timing children only
    (run --layers once read 722 MB against 85 MB without)."""
    plain = measure("fake", _fake(), FAST)
    profiled = measure("fake", _fake(layers_alloc_mb=300), FAST, layers=LAYERS)
    assert profiled.ok and "error" not in profiled.layers
    for name in ("cpu_peak_rss_mb", "cpu_peak_rss_increase_mb"):
        assert profiled.memory[name]["value_mb"] < plain.memory[name]["value_mb"] + 100, name


def test_rounds_alternate_with_clean_blocks_and_drift_moves_both_alike():
    """20 profiled runs are two rounds of 10, each between two clean blocks (never a clean run inside a round). A
    machine slowing linearly (0.2 ms per round) moves the clean latency of the rounds as much as the profiled runs:
    the overhead stays the machine's 1.5 / 1.0 at the time of the rounds, where a clean latency taken once before
    all profiled runs would read 1.7 / 1.0."""
    spec = {**LAYERS, "iterations": 20}
    m = measure("fake", _fake(profiled_latencies_ms=[1.5], drift_ms_per_round=0.2), FAST, layers=spec)
    assert m.ok and m.latency["median_ms"] == 1.0  # the timing children: no drift there
    phases = m.layers["phases"]
    runs = [(p, len(list(g))) for p, g in __import__("itertools").groupby(phases)]
    assert [p for p, _ in runs] == ["clean", "profiled", "clean", "profiled", "clean"]
    assert runs[1][1] == runs[3][1] == 10
    lay = m.layers
    assert lay["rounds"] == 2 and lay["iterations"] == 20
    assert lay["clean_blocks_ms"] == pytest.approx([1.0, 1.2, 1.4])
    assert lay["end_to_end_ms"] == pytest.approx(1.2)  # mean of (1.0 + 1.2) / 2 and (1.2 + 1.4) / 2
    assert lay["profiled_run_ms"] == pytest.approx(1.7)  # 1.6 and 1.8: each round halfway through its drift
    rep = report(from_raw(lay), model="fake", runner="fake", device="cpu", batch=1)
    assert rep.rounds == 2 and rep.profiler_overhead == pytest.approx(1.7 / 1.2 - 1)
    assert any("between 1 and 1.4 ms over the 3 clean blocks (+40%)" in n for n in rep.notes), rep.notes
    assert any(n.startswith("2 rounds of profiled runs") and "1, 1.2, 1.4 ms" in n for n in rep.notes), rep.notes
