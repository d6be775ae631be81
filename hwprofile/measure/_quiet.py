"""Is the machine quiet? Checked before each measurement, and a disturbed record measured again.

Before each measurement the machine is checked (the load on the cores over a short window of /proc/stat; other
processes on the GPU), pyperf's "system check" being the model; a ``disturbed`` record is measured again after a
back-off (the back-off ends early once the check finds the machine quiet), up to ``retries`` times, and is kept as
``disturbed`` if it never comes clean (:func:`measure_with_retries`). How a record is graded is
:mod:`hwprofile.profile._quality`'s (it reads what a record stores and never measures).

NVML is used through nvidia-ml-py's documented API (``pynvml``), imported lazily; without it, or on CPU,
the GPU readings are simply absent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any

from hwprofile._lazy import heavy
from hwprofile.env import nvml_compute_processes, nvml_handle
from hwprofile.measure._isolation import cpu_busy_s
from hwprofile.profile import DEFAULT_BACKOFF_S, DEFAULT_RETRIES, FOREIGN_CORES_DISTURBED, Record, with_quality

#: the pre-measurement system check: window over /proc/stat, and the load that counts as busy
CHECK_WINDOW_S = 0.1
CHECK_BUSY_CORES = FOREIGN_CORES_DISTURBED


# ------------------------------------------------------------------------------------------------ system check

def _busy_s() -> float | None:
    return cpu_busy_s()


def cpu_load(window_s: float = CHECK_WINDOW_S, sleep: Callable[[float], None] = time.sleep) -> float | None:
    """Cores kept busy by other processes over ``window_s`` (all busy CPU time from /proc/stat minus ours)."""
    t0, b0, own0 = time.monotonic(), _busy_s(), _own_cpu_s()
    sleep(window_s)
    b1, own1, wall = _busy_s(), _own_cpu_s(), time.monotonic() - t0
    if b0 is None or b1 is None or wall <= 0:
        return None
    return round(max(0.0, (b1 - b0) - (own1 - own0)) / wall, 3)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _import_nvml():
    try:
        pynvml = heavy("pynvml")
    except ImportError:
        return None
    return pynvml


@dataclass
class GpuProbe:
    """NVML readings of one CUDA device around a measurement: compute processes, clocks-event reasons.

    ``nvml`` is the ``pynvml`` module (or a stand-in with the same functions); every call that the
    GPU or driver does not support leaves its reading out.
    """

    nvml: Any  # the pynvml module, or a stand-in with its functions
    handle: Any
    own_pids: set[int] = field(default_factory=set)

    @classmethod
    def open(cls, device: str, nvml=None) -> "GpuProbe | None":
        if not device.startswith("cuda"):
            return None
        nvml = nvml or _import_nvml()
        if nvml is None:
            return None
        try:
            nvml.nvmlInit()
            return cls(nvml, nvml_handle(nvml, int(device.partition(":")[2] or 0)), {os.getpid()})
        except Exception:  # NVMLError: no driver, no such device, ...
            return None

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass

    def _try(self, fn, *args):
        try:
            return getattr(self.nvml, fn)(*args)
        except Exception:  # NVMLError_NotSupported, missing function in an old binding, ...
            return None

    def other_processes(self, exclude: Set[int] = frozenset()) -> list[int] | None:
        """Pids of other processes holding a compute context on the GPU (runners.env.nvml_compute_processes:
        ``_v3``, else ``_v2``, else the plain query); None when NVML cannot say."""
        procs = nvml_compute_processes(self.nvml, self.handle)
        if procs is None:
            return None
        mine = self.own_pids | set(exclude)
        return sorted({int(p.pid) for p in procs} - mine)

    def event_reasons(self) -> int | None:
        for fn in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"):
            if hasattr(self.nvml, fn):
                value = self._try(fn, self.handle)
                if value is not None:
                    return int(value)
        return None


def system_check(device: str, window_s: float = CHECK_WINDOW_S, probe: GpuProbe | None = None) -> dict:
    """The machine before a measurement: other load on the cores; on a GPU, other compute processes."""
    out: dict = {"cpu_other_cores": cpu_load(window_s), "window_s": window_s}
    if probe is not None:
        others = probe.other_processes()
        if others is not None:
            out["gpu_other_processes"] = others
    return out


def is_quiet(check: dict) -> bool:
    load = check.get("cpu_other_cores")
    return (load is None or load <= CHECK_BUSY_CORES) and not check.get("gpu_other_processes")


class GpuWatch:
    """NVML read around one measurement by this process: other processes seen after it and the
    clocks-event reasons right after it. (Time below the application clocks is read by the measuring
    child over its timed window only: settings.gpu_clocks, hwprofile.trackers.clocks.)"""

    def __init__(self, probe: GpuProbe | None):
        self.probe = probe
        self._t0 = 0.0
        self.wall_s = 0.0

    def __enter__(self) -> "GpuWatch":
        self._t0 = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.wall_s = time.monotonic() - self._t0

    def reading(self) -> dict | None:
        if self.probe is None:
            return None
        return {"window_s": round(self.wall_s, 3), "other_processes": self.probe.other_processes() or [],
                "clocks_event_reasons": self.probe.event_reasons()}


# --------------------------------------------------------------------------------------------- re-measuring

def wait_quiet(device: str, limit_s: float, probe: GpuProbe | None = None, sleep=time.sleep) -> dict:
    """Check the machine until it is quiet or ``limit_s`` has passed; returns the last check."""
    end = time.monotonic() + limit_s
    while True:
        check = system_check(device, probe=probe)
        if is_quiet(check) or time.monotonic() >= end:
            return check
        sleep(min(1.0, max(0.0, end - time.monotonic())))


def measure_with_retries(measure_once: Callable[[], Record], device: str, *, retries: int = DEFAULT_RETRIES,
                         backoff_s: float = DEFAULT_BACKOFF_S, nvml=None, sleep=time.sleep,
                         on_retry: Callable[[int, int, tuple], None] | None = None) -> Record:
    """Measure (``measure_once() -> Record``) with a system check before it; a disturbed record is measured
    again after a back-off (``backoff_s``, doubled each time; it ends early once the machine is quiet), up
    to ``retries`` times. Returns the first record that is not disturbed, else the last one, disturbed.
    ``on_retry(attempt, retries, reasons)`` is called before each re-measurement (e.g. by a progress bar)."""
    probe = GpuProbe.open(device, nvml)
    try:
        attempts: list[dict] = []
        check = system_check(device, probe=probe)
        best = None
        for attempt in range(retries + 1):
            if attempt:
                if on_retry is not None:
                    on_retry(attempt, retries, tuple(best.quality_reasons) if best is not None else ())
                check = wait_quiet(device, backoff_s * 2 ** (attempt - 1), probe, sleep)
            with GpuWatch(probe) as watch:
                record = measure_once()
            if not record.ok:
                return best if best is not None else record  # a failed retry keeps the disturbed measurement
            record = with_quality(record, check, watch.reading(), attempts)
            if record.quality != "disturbed":
                return record
            attempts = attempts + [{"quality": record.quality, "reasons": record.quality_reasons,
                                    "median_ms": record.median_ms, "measured_utc": record.measured_utc}]
            best = record
        if best is None:  # no pass ran: retries < 0
            raise ValueError(f"retries {retries}: expected a count >= 0")
        return best
    finally:
        if probe is not None:
            probe.close()
