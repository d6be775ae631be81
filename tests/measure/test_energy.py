"""Energy per inference (hwprofile.trackers.energy): NVML through the stand-in, RAPL through a powercap tree
made in a temporary folder, and the readings carried from the timing loop to ``show`` and ``compare``.

Time is a fake clock that the fake runner and the waits advance, so nothing here depends on how busy the
machine is.
"""

from __future__ import annotations

import sys
import types

import pytest

from fake_nvml import StrictNvml, nvml_error, real
from hwprofile.cli import main
from hwprofile.measure import _child as child
from hwprofile.measure import _core as core
from hwprofile.profile import Profile, Record, TimingConfig, Workload
from hwprofile.runners._fake import FakeCudaRunner
from hwprofile.trackers import clocks, energy, timing

WATTS = 300.0
TICK_S = 0.05  # the counter's update period (NVML: 20-100 ms)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    fake_time = types.SimpleNamespace(perf_counter=c.perf_counter, sleep=c.sleep, monotonic=c.perf_counter)
    for module in (timing, energy, clocks):
        monkeypatch.setattr(module, "time", fake_time)
    return c


class EnergyNvml(StrictNvml):
    """A GPU drawing WATTS whose energy counter (mJ) moves every TICK_S; names from nvidia-ml-py."""

    def __init__(self, clock: Clock, supported: bool = True, watts: float = WATTS) -> None:
        self.clock, self.supported, self.watts = clock, supported, watts
        self.__spec__ = real.__spec__  # importable as "pynvml" when put in sys.modules

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("gpu", i)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise nvml_error(real.NVML_ERROR_NOT_SUPPORTED)
        ticks = int(self.clock.now // TICK_S)
        return int(ticks * TICK_S * self.watts * 1000)

    def nvmlDeviceGetViolationStatus(self, handle, policy):
        # idle (low utilization) 10% of the time, nothing else
        held = 0.1 * self.clock.now * 1e9 if policy in (4, 10) else 0
        return types.SimpleNamespace(referenceTime=0, violationTime=int(held))


class Busy:
    """A runner whose every inference takes ``ms`` of the fake clock."""

    def __init__(self, clock: Clock, ms: float = 10.0) -> None:
        self.clock, self.ms = clock, ms

    def infer(self) -> None:
        self.clock.now += self.ms / 1000

    def synchronize(self) -> None:
        pass

    def time_once(self) -> float:
        self.infer()
        return self.ms


def test_the_throughput_window_is_lengthened_to_a_second_and_its_energy_read(clock):
    meter, why = energy.nvml_meter("cuda:0", EnergyNvml(clock))
    assert why is None
    out = timing.throughput(Busy(clock), batch=8, window_s=0.2, meter=meter)
    e = out["energy"]
    assert out["window_s"] >= energy.MIN_WINDOW_S and e["window_s"] >= energy.MIN_WINDOW_S
    assert e["images"] == out["iterations"] * 8
    # from one counter step to the step after the window: the window plus at most one update period
    assert WATTS * out["window_s"] <= e["joules"] <= WATTS * (out["window_s"] + TICK_S) + 1e-6
    assert e["meter"] == "nvml total energy" and "device-wide" in e["scope"]
    assert timing.throughput(Busy(clock), batch=8, window_s=0.2)["window_s"] < energy.MIN_WINDOW_S


def test_joules_per_image_and_mean_watts_pool_the_processes():
    w = {"meter": "m", "scope": "s"}
    e = energy.combine([{**w, "joules": 30.0, "window_s": 1.0, "images": 300},
                        {**w, "joules": 10.0, "window_s": 1.0, "images": 100}])
    assert e["joules_per_image"] == pytest.approx(0.1) and e["mean_watts"] == pytest.approx(20.0)
    assert e["windows"] == 2 and e["images"] == 400
    assert energy.combine([], "no counter") == {"reason": "no counter"}
    assert energy.combine([None], None) is None


def test_no_energy_counter_on_the_gpu_is_a_stated_reason(clock):
    meter, why = energy.nvml_meter("cuda:0", EnergyNvml(clock, supported=False))
    assert meter is None and "no readable total-energy counter" in why and "NotSupported" in why


def _powercap(tmp_path, packages=((1_000_000, 2**32),), core=True):
    root = tmp_path / "powercap"
    for i, (uj, top) in enumerate(packages):
        d = root / f"intel-rapl:{i}"
        d.mkdir(parents=True)
        (d / "name").write_text(f"package-{i}\n")
        (d / "energy_uj").write_text(f"{uj}\n")
        (d / "max_energy_range_uj").write_text(f"{top}\n")
        if core:  # a subdomain: counted inside its package, never added again
            sub = root / f"intel-rapl:{i}:0"
            sub.mkdir()
            (sub / "name").write_text("core\n")
            (sub / "energy_uj").write_text("5\n")
    return root


def test_rapl_sums_the_packages_and_unwraps_their_counters(tmp_path):
    root = _powercap(tmp_path, packages=((1_000_000, 2**32), (4_000_000_000, 4_100_000_000)))
    meter, why = energy.open_meter("cpu", powercap=root)
    assert why is None and meter.name == "rapl package energy" and len(meter.domains) == 2
    start = meter.read_j()
    (root / "intel-rapl:0" / "energy_uj").write_text("3000000\n")  # +2 J
    (root / "intel-rapl:1" / "energy_uj").write_text("500000\n")  # wrapped: +100.5 J
    assert meter.read_j() - start == pytest.approx(2.0 + 100.5)


def test_no_or_unreadable_rapl_is_a_stated_reason(tmp_path, monkeypatch):
    meter, why = energy.open_meter("cpu", powercap=tmp_path / "absent")
    assert meter is None and "does not exist on this machine" in why
    (tmp_path / "empty").mkdir()
    assert "no RAPL package domain" in energy.open_meter("cpu", powercap=tmp_path / "empty")[1]
    root = _powercap(tmp_path)

    def refuse(self):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(energy.RaplEnergy, "_raw", staticmethod(lambda d: refuse(d)))
    meter, why = energy.open_meter("cpu", powercap=root)
    assert meter is None and "not readable by this user" in why


def _gpu_record(monkeypatch, clock, tmp_path, watts=WATTS, ms=10.0) -> Record:
    """A record measured by the child's own code (in this process) with the fake GPU runner and the NVML
    stand-in, combined as measure() combines, and made a record as the sweep makes it."""
    monkeypatch.setitem(sys.modules, "pynvml", EnergyNvml(clock, watts=watts))
    monkeypatch.setattr(FakeCudaRunner, "time_once", lambda self: Busy(clock, ms).time_once())
    monkeypatch.setattr(FakeCudaRunner, "infer", lambda self: Busy(clock, ms).infer())
    workload = Workload("onnx", None, str(tmp_path / "m.onnx"), 4, 224, options={"latencies_ms": [ms]})
    cfg = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=5, budget_s=0.1, throughput_window_s=0.5)
    result = child.run_measure({"runner_path": "hwprofile.runners._fake:FakeCudaRunner", "device": "cuda:0",
                                "workload": workload.to_dict(), "timing": cfg.to_dict()})
    assert result["status"] == "ok", result
    exit = {"foreign_cpu_cores": 0.0, "maxrss_mb": 100.0}
    m = core._combine("fake:cuda", [(exit, result)], None, {"runner": "fake:cuda"}, cfg, 1.0)
    return Record(device_id="gpu-fake", model="EfficientNet-B0", strategy=None, scale=1.0, batch=4,
                  runner="ort:cuda", precision="fp32", mode="infer", resolution=224, flops=1, params=1, acts=1,
                  status="ok", latency=m.latency, throughput=m.throughput, memory=m.memory, settings=m.settings,
                  energy=m.energy)


def test_energy_and_the_timed_window_reach_the_record_show_and_compare(monkeypatch, clock, tmp_path, capsys):
    rec = _gpu_record(monkeypatch, clock, tmp_path)
    assert rec.energy.meter == "nvml total energy" and rec.energy.windows == 1
    assert rec.energy.mean_watts == pytest.approx(WATTS, rel=0.06)  # at most one 50 ms step over >= 1 s
    assert rec.energy.joules_per_image == pytest.approx(WATTS * 0.010 / 4, rel=0.06)
    window = rec.settings.to_dict()["gpu_clocks"]
    assert window["low_utilization"] == pytest.approx(0.1, abs=1e-3)  # idle: recorded apart, not graded
    assert window["below_app_clocks_share"]["below_app_clocks"] == pytest.approx(0.0, abs=1e-3)
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    Profile(devices={"gpu-fake": {"id": "gpu-fake"}}, records=[rec]).save(base)
    hotter = _gpu_record(monkeypatch, clock, tmp_path, watts=2 * WATTS)
    Profile(devices={"gpu-fake": {"id": "gpu-fake"}}, records=[hotter]).save(cur)
    assert main(["show", str(base)]) == 0  # J/img fits the default width; W (and the rest) with --wide
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model "))
    assert "J/img" in header
    assert "nvml total energy" in " ".join(out.split())  # notes wrap to the width
    assert main(["show", str(base), "--wide"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("model "))
    assert "J/img" in header and " W " in header + " "
    assert main(["compare", str(base), str(cur), "--wide"]) == 0
    out = capsys.readouterr().out
    assert "J/img ratio" in out and "2.0" in out.split("J/img ratio")[1]


def test_a_cpu_record_without_rapl_says_why(tmp_path, capsys):
    rec = Record(device_id="cpu-x", model="M", strategy=None, scale=1.0, batch=1, runner="ort:cpu", precision="fp32",
                 mode="infer", resolution=224, flops=1, params=1, acts=1, status="ok",
                 latency={"median_ms": 1.0}, energy={"reason": "no RAPL: /sys/class/powercap does not exist"})
    path = tmp_path / "p.json"
    Profile(devices={"cpu-x": {"id": "cpu-x"}}, records=[rec]).save(path)
    assert Profile.load(path).records[0].energy.reason.startswith("no RAPL")
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "energy: not measured (no RAPL" in out and "J/img" not in out
