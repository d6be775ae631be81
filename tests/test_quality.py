"""Record quality (hwprofile.profile._quality) and re-measuring (hwprofile.measure._quiet), with a stand-in NVML
for the GPU readings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fake_nvml import StrictNvml, nvml_error, real
from hwprofile.measure import _quiet as quiet
from hwprofile.profile import Record
from hwprofile.profile import _quality as quality
from hwprofile.trackers import clocks


def rec(foreign=(0.0,), cv=0.02, medians=(10.0,), status="ok", **kw) -> Record:
    lat = {"median_ms": medians[0], "cv": cv, "medians_ms": list(medians), "samples_ms": [[m] for m in medians]}
    return Record(device_id="d", model="M", strategy=None, scale=1.0, batch=1, runner="torch:cpu",
                  precision="fp32", mode="infer", resolution=224, flops=1, params=1, acts=1, status=status,
                  latency=lat if status == "ok" else None,
                  settings={"foreign_cpu_cores": list(foreign)} if foreign is not None else {}, **kw)


@pytest.mark.parametrize("kw,expected,needle", [
    ({}, "clean", None),
    ({"foreign": (0.0, 0.3)}, "noisy", "other load"),
    ({"foreign": (1.0,)}, "disturbed", "other load"),
    ({"cv": 0.15}, "noisy", "latency CV 0.15 > 0.1"),
    ({"cv": 0.5}, "disturbed", "latency CV 0.5 > 0.3"),
    ({"medians": (10.0, 11.5)}, "noisy", "spread between processes"),
    ({"medians": (10.0, 14.0), "foreign": (0.2, 0.0)}, "disturbed", "spread between processes 0.4 > 0.3"),
    ({"foreign": None}, "clean", None),  # a record without other-load readings is judged on the rest
])
def test_assess(kw, expected, needle):
    r = rec(**kw)
    q = quality.assess(r.latency, r.settings)
    assert q.quality == expected
    assert (needle is None and q.reasons == ()) or any(needle in x for x in q.reasons)


def test_recorded_quality_wins_over_assessment_and_failed_records_have_none():
    r = rec(foreign=(2.0,), quality="clean", quality_reasons=[])
    assert quality.of(r).quality == "clean"
    assert quality.of(rec(foreign=(2.0,))).quality == "disturbed"
    assert quality.of(rec(status="failed")) is None


class FakeNvml(StrictNvml):
    """The slice of nvidia-ml-py hwprofile.profile._quality and hwprofile.trackers.clocks use (names from the real
    module: tests/fake_nvml.py); counters advance on every reading. ``queries`` names the compute-process
    queries this driver has (the others raise NVMLError_FunctionNotFound, as on an older driver)."""

    def __init__(self, pids=(), step_ns=None, reasons=0, supported=True,
                 queries=("nvmlDeviceGetComputeRunningProcesses_v3",)):
        self.pids, self.step_ns, self.reasons, self.supported = list(pids), step_ns or {}, reasons, supported
        self.queries, self.asked = set(queries), []
        self.reads, self.inited = 0, 0

    def nvmlInit(self):
        self.inited += 1

    def nvmlShutdown(self):
        self.inited -= 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("handle", i)

    def _procs(self, name):
        self.asked.append(name)
        if name not in self.queries:
            raise nvml_error(real.NVML_ERROR_FUNCTION_NOT_FOUND)
        return [SimpleNamespace(pid=p, usedGpuMemory=None) for p in self.pids]

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle):
        return self._procs("nvmlDeviceGetComputeRunningProcesses_v3")

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle):
        return self._procs("nvmlDeviceGetComputeRunningProcesses_v2")

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return self._procs("nvmlDeviceGetComputeRunningProcesses")

    def nvmlDeviceGetViolationStatus(self, handle, policy):
        if not self.supported:
            raise nvml_error(real.NVML_ERROR_NOT_SUPPORTED)
        self.reads += policy == 0  # one pass over the counters per reading, power first
        return SimpleNamespace(referenceTime=0, violationTime=int(self.step_ns.get(policy, 0) * self.reads))

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self.reasons


def measurer(*records):
    calls = []

    def once():
        calls.append(1)
        return records[min(len(calls), len(records)) - 1]
    return once, calls


def test_disturbed_records_are_measured_again_until_clean():
    once, calls = measurer(rec(foreign=(1.2,)), rec(foreign=(0.0,)))
    slept = []
    r = quiet.measure_with_retries(once, "cpu", retries=2, backoff_s=0.0, sleep=slept.append)
    assert len(calls) == 2 and r.quality == "clean" and r.quality_reasons == []
    (first,) = r.settings.to_dict()["quality_attempts"]
    assert first["quality"] == "disturbed" and "other load" in first["reasons"][0]
    assert "cpu_other_cores" in r.settings.to_dict()["system_check"]


def test_a_record_that_never_comes_clean_is_kept_disturbed():
    once, calls = measurer(rec(foreign=(1.5,)))
    r = quiet.measure_with_retries(once, "cpu", retries=2, backoff_s=0.0)
    assert len(calls) == 3 and r.quality == "disturbed" and len(r.settings.to_dict()["quality_attempts"]) == 2
    once, calls = measurer(rec(foreign=(1.5,)), rec(status="skipped"))  # e.g. the budget ran out
    r = quiet.measure_with_retries(once, "cpu", retries=2, backoff_s=0.0)
    assert len(calls) == 2 and r.ok and r.quality == "disturbed"
    once, calls = measurer(rec(foreign=(0.3,)))  # noisy is not re-measured
    r = quiet.measure_with_retries(once, "cpu", retries=2, backoff_s=0.0)
    assert len(calls) == 1 and r.quality == "noisy"
    once, calls = measurer(rec(status="failed"))
    assert quiet.measure_with_retries(once, "cpu").status == "failed" and len(calls) == 1


def test_gpu_other_processes_disturb_through_the_newest_process_query():
    nvml = FakeNvml(pids=[4242])
    once, calls = measurer(rec(foreign=None))
    r = quiet.measure_with_retries(once, "cuda:0", retries=0, nvml=nvml)
    assert r.quality == "disturbed" and r.settings.to_dict()["gpu_watch"]["other_processes"] == [4242]
    assert any("other processes on the GPU" in x for x in r.quality_reasons) and nvml.inited == 0
    assert set(nvml.asked) == {"nvmlDeviceGetComputeRunningProcesses_v3"}
    assert "below_app_clocks_share" not in r.settings.to_dict()["gpu_watch"]  # the child's timed window has them


@pytest.mark.parametrize("queries,asked", [
    (("nvmlDeviceGetComputeRunningProcesses_v2",), ["_v3", "_v2"]),
    (("nvmlDeviceGetComputeRunningProcesses",), ["_v3", "_v2", ""]),
])
def test_an_older_driver_falls_back_to_the_older_process_queries(queries, asked):
    nvml = FakeNvml(pids=[7], queries=queries)
    probe = quiet.GpuProbe(nvml, ("handle", 0), {1})
    assert probe.other_processes() == [7]
    assert nvml.asked == [f"nvmlDeviceGetComputeRunningProcesses{a}" for a in asked]


def test_no_process_query_answers_means_unknown_not_quiet():
    probe = quiet.GpuProbe(FakeNvml(pids=[7], queries=()), ("handle", 0), {1})
    assert probe.other_processes() is None
    check = quiet.system_check("cuda:0", window_s=0.0, probe=probe)
    assert "gpu_other_processes" not in check


def _window(nvml, step_s=1.0):
    ticks = iter([0.0, step_s])
    w = clocks.ClockWindow(nvml, ("handle", 0), clock=lambda: next(ticks))
    w.start()
    return w.stop()


def test_below_clocks_time_is_read_over_the_timed_window_and_thermal_disturbs():
    timed = clocks.shares([_window(FakeNvml(step_ns={1: 2e8}))])  # 0.2 s of thermal slowdown per 1 s window
    assert timed["below_app_clocks_share"]["thermal"] == 0.2 and timed["window_s"] == 1.0
    q = quality.assess(rec(foreign=None).latency, {"gpu_clocks": timed})
    assert q.quality == "disturbed" and any("thermal" in x for x in q.reasons)


def test_idle_low_utilization_is_recorded_apart_and_is_not_a_disturbance():
    # launch-bound: 0.9 of the window below the application clocks, all of it for low utilization
    timed = clocks.shares([_window(FakeNvml(step_ns={4: 9e8, 10: 9e8}))])
    assert timed["low_utilization"] == 0.9 and timed["below_app_clocks_share"]["below_app_clocks"] == 0.0
    assert quality.assess(rec(foreign=None).latency, {"gpu_clocks": timed}).quality == "clean"
    # the same total with no idle share is time held down by a limiter: noisy
    timed = clocks.shares([_window(FakeNvml(step_ns={10: 9e8}))])
    q = quality.assess(rec(foreign=None).latency, {"gpu_clocks": timed})
    assert q.quality == "noisy" and any("below the application clocks" in x for x in q.reasons)


def test_shares_pool_the_processes_windows():
    a, b = _window(FakeNvml(step_ns={0: 1e8})), _window(FakeNvml(step_ns={0: 3e8}), step_s=3.0)
    assert clocks.shares([a, b])["below_app_clocks_share"]["power"] == round(4e8 / 4e9, 4)
    assert clocks.shares([None, {}]) is None


def test_gpu_power_cap_makes_noisy_and_unsupported_counters_are_left_out():
    timed = clocks.shares([_window(FakeNvml(step_ns={0: 3e8}))])
    q = quality.assess(rec(foreign=None).latency, {"gpu_clocks": timed})
    assert q.quality == "noisy" and any("power cap" in x for x in q.reasons)
    assert _window(FakeNvml(supported=False))["violation_ns"] == {}
    nvml = FakeNvml(reasons=0x40)  # hardware thermal slowdown right after the measurement
    r = quiet.measure_with_retries(measurer(rec(foreign=None))[0], "cuda:0", retries=0, nvml=nvml)
    assert r.quality == "disturbed" and any("thermal (hardware)" in x for x in r.quality_reasons)
    clean = quiet.measure_with_retries(measurer(rec(foreign=None))[0], "cuda:0", retries=0, nvml=FakeNvml())
    assert clean.quality == "clean"


def test_records_from_before_the_timed_window_are_still_graded_on_their_whole_window_shares():
    q = quality.assess(rec(foreign=None).latency, {"gpu_watch": {"below_app_clocks_share": {"thermal": 0.5}}})
    assert q.quality == "disturbed"


def test_no_nvml_on_cpu_or_without_the_binding():
    assert quiet.GpuProbe.open("cpu", FakeNvml()) is None
    r = quiet.measure_with_retries(measurer(rec())[0], "cpu", retries=0)
    assert "gpu_watch" not in r.settings


def test_system_check_reads_the_load_of_other_processes():
    import subprocess
    import sys
    import time

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        check = quiet.system_check("cpu", window_s=0.5)
    finally:
        hog.kill()
        hog.wait()
    assert check["cpu_other_cores"] >= 0.5 and not quiet.is_quiet(check)


def test_summary_line_and_remeasure_selection(tmp_path):
    records = [rec(), rec(foreign=(1.0,)), rec(cv=0.2), rec(status="failed")]
    line = quality.summary_line(records, tmp_path / "p.json")
    assert line.startswith("quality: 2 of 3 ok records are not clean (1 disturbed, 1 noisy")
    assert f"hwprofile run --resume {tmp_path / 'p.json'} --remeasure disturbed" in line
    assert quality.summary_line(records[:1], "p.json") == "quality: all 1 ok records are clean"
    assert "--remeasure unclean" in quality.summary_line([rec(cv=0.2)], "p.json")
    assert [quality.needs_remeasure(r, "disturbed") for r in records] == [False, True, False, False]
    assert [quality.needs_remeasure(r, "unclean") for r in records] == [False, True, True, False]
    assert not quality.needs_remeasure(records[1], None)
    assert records[1].replace(quality="clean").quality == "clean"


def test_docs_state_the_thresholds_the_code_uses():
    """docs/measurement.md is the one description of the thresholds: every value it names is the code's."""
    import re
    from pathlib import Path

    from hwprofile.analysis import _design as design
    from hwprofile.analysis import _follows as analysis
    from hwprofile.analysis import _regression as regression
    from hwprofile.analysis import _roofline as roofline

    text = (Path(__file__).resolve().parents[1] / "docs" / "measurement.md").read_text()
    rows = [ln.split("|")[1:-1] for ln in text.splitlines() if ln.startswith("| ") and "`" in ln.split("|")[-2]]
    assert len(rows) >= 8
    for cells in rows:
        names = re.findall(r"`(\w+)`", cells[4])
        values = [float(m.group()) for c in cells[2:4] if (m := re.match(r"\s*[\d.]+", c))]
        assert [float(getattr(quality, n)) for n in names] == values, cells
    inline = re.findall(r"`([A-Z_]+)` = (\d+(?:\.\d+)?)(?![\d%])", text)
    assert len(inline) >= 9
    for name, value in inline:
        module = next(m for m in (quality, quiet, analysis, regression, design, roofline) if hasattr(m, name))
        assert float(getattr(module, name)) == float(value), name
    assert "`NEAR_ROOF` = 50%" in text and roofline.NEAR_ROOF == 0.5
    assert "`CONFIDENCE` = 95%" in text and analysis.CONFIDENCE == 0.95
