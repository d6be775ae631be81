"""Record quality: was a measurement taken on a quiet machine? And re-measuring the ones that were not.

Every ``ok`` record gets ``quality``: ``clean``, ``noisy`` or ``disturbed``, with ``quality_reasons``
(each a short sentence with the number that decided it). The inputs are what a record already carries
(``settings.foreign_cpu_cores`` per process, the latency CV and the spread between processes) and, on a
GPU, what NVML said: over the timed window only, read by the measuring child (``settings.gpu_clocks``: the
share of time each limiter held the clocks below the application clocks; idle, LOW_UTILIZATION, is recorded
apart and is no disturbance; :mod:`hwprofile.measure.clocks`), and around the measurement, read by this
process (``settings.gpu_watch``: other processes on the GPU, clocks-event reasons after it). The thresholds
are the block of constants below, documented in docs/measurement.md ("Record quality").

Re-measuring (:func:`measure_with_retries`): before each measurement the machine is checked (the load on
the cores over a short window of /proc/stat; other processes on the GPU), pyperf's "system check" being the
model; a ``disturbed`` record is measured again after a back-off (the back-off ends early once the check
finds the machine quiet), up to ``retries`` times, and is kept as ``disturbed`` if it never comes clean.

NVML is used through nvidia-ml-py's documented API (``pynvml``), imported lazily; without it, or on CPU,
the GPU readings are simply absent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any

from ._lazy import heavy
from .measure.isolation import cpu_busy_s
from .datatypes import Record
from .runners.env import nvml_compute_processes, nvml_handle

QUALITIES = ("clean", "noisy", "disturbed")

# ----------------------------------------------------------------------------------------------------------
# Thresholds: the one place they are set (docs/measurement.md, "Record quality", explains each)
# ----------------------------------------------------------------------------------------------------------
#: other processes kept more than this many cores busy (average over a measuring process, worst process)
FOREIGN_CORES_NOISY = 0.15
FOREIGN_CORES_DISTURBED = 0.5
#: coefficient of variation of the pooled samples (std / mean)
CV_NOISY = 0.10
CV_DISTURBED = 0.30
#: spread between the medians of the measuring processes (max / min - 1)
SPREAD_NOISY = 0.10
SPREAD_DISTURBED = 0.30
#: share of the timed window the GPU was held below its application clocks, by cause (NVML violation
#: counters): thermal, board-limit or reliability slowdowns disturb; power cap and sync boost make a record
#: noisy; so does time below application clocks by any limiter but idle (low utilization: not graded)
GPU_THERMAL_DISTURBED = 0.05
GPU_POWER_NOISY = 0.05
GPU_SYNC_BOOST_NOISY = 0.05
GPU_BELOW_APP_CLOCKS_NOISY = 0.20
#: any other process holding a compute context on the measured GPU disturbs a record
GPU_OTHER_PROCESSES_DISTURBED = 1
#: the pre-measurement system check: window over /proc/stat, and the load that counts as busy
CHECK_WINDOW_S = 0.1
CHECK_BUSY_CORES = FOREIGN_CORES_DISTURBED
#: re-measuring: default retries of a disturbed record and the first back-off (doubled each time)
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 5.0

# NVML's clocks-event reason bits (nvmlClocksEventReason*); the perf-policy counters are measure.clocks.POLICIES
_EVENT_BITS = {0x4: "power cap (software)", 0x8: "hardware slowdown", 0x10: "sync boost",
               0x20: "thermal (software)", 0x40: "thermal (hardware)", 0x80: "power brake (hardware)"}
_DISTURBING_EVENTS = 0x8 | 0x20 | 0x40 | 0x80


# ------------------------------------------------------------------------------------------------ assessment

@dataclass(frozen=True)
class Quality:
    quality: str
    reasons: tuple[str, ...] = ()


def _worst(found: list[tuple[str, str]]) -> Quality:
    order = {q: i for i, q in enumerate(QUALITIES)}
    level = max((q for q, _ in found), key=order.__getitem__, default="clean")
    return Quality(level, tuple(text for _, text in found))


def _grade(value: float | None, noisy: float, disturbed: float, text: str, unit: str = "") -> list[tuple[str, str]]:
    if value is None:
        return []
    if value > disturbed:
        return [("disturbed", f"{text} {value:.3g}{unit} > {disturbed:g}")]
    if value > noisy:
        return [("noisy", f"{text} {value:.3g}{unit} > {noisy:g}")]
    return []


def assess(latency: dict | None, settings: dict | None) -> Quality:
    """The quality of one ok measurement from its latency statistics and settings (no I/O)."""
    latency, settings = _plain(latency) or {}, _plain(settings) or {}
    found: list[tuple[str, str]] = []
    foreign = [f for f in settings.get("foreign_cpu_cores") or [] if f is not None]
    if foreign:
        found += _grade(max(foreign), FOREIGN_CORES_NOISY, FOREIGN_CORES_DISTURBED, "other load", " cores")
    found += _grade(latency.get("cv"), CV_NOISY, CV_DISTURBED, "latency CV")
    spread = latency.get("repeat_spread")
    if spread is None and len(latency.get("medians_ms") or []) > 1:
        medians = latency["medians_ms"]
        spread = max(medians) / min(medians) - 1 if min(medians) > 0 else None
    found += _grade(spread, SPREAD_NOISY, SPREAD_DISTURBED, "spread between processes")
    found += _gpu_findings(settings.get("gpu_watch"), settings.get("gpu_clocks"))
    check = settings.get("system_check") or {}
    if check.get("gpu_other_processes"):
        pids = check["gpu_other_processes"]
        found.append(("disturbed", f"other processes on the GPU before the measurement: {len(pids)} "
                                   f"(pids {', '.join(map(str, pids[:5]))})"))
    return _worst(found)


def _gpu_findings(watch: dict | None, timed: dict | None = None) -> list[tuple[str, str]]:
    """Findings from the GPU readings: ``timed`` (settings.gpu_clocks, the timed window) gives the shares;
    a record from before it has them in ``watch`` (the whole measurement)."""
    watch = watch or {}
    found: list[tuple[str, str]] = []
    others = watch.get("other_processes") or []
    if len(others) >= GPU_OTHER_PROCESSES_DISTURBED:
        found.append(("disturbed", f"other processes on the GPU: {len(others)} (pids "
                                   f"{', '.join(map(str, others[:5]))})"))
    shares = (timed or {}).get("below_app_clocks_share") or watch.get("below_app_clocks_share") or {}
    for cause in ("thermal", "board_limit", "reliability"):
        found += _grade(shares.get(cause), GPU_THERMAL_DISTURBED, GPU_THERMAL_DISTURBED,
                        f"share of time clocks were held down by {cause.replace('_', ' ')}:")
    found += _grade(shares.get("power"), GPU_POWER_NOISY, float("inf"), "share of time clocks were held down by "
                                                                          "the power cap:")
    found += _grade(shares.get("sync_boost"), GPU_SYNC_BOOST_NOISY, float("inf"),
                    "share of time clocks were held down by sync boost:")
    found += _grade(shares.get("below_app_clocks"), GPU_BELOW_APP_CLOCKS_NOISY, float("inf"),
                    "share of time below the application clocks (idle not counted):")
    events = int(watch.get("clocks_event_reasons") or 0)
    if events & _DISTURBING_EVENTS:
        names = [name for bit, name in _EVENT_BITS.items() if events & bit & _DISTURBING_EVENTS]
        found.append(("disturbed", f"clocks held down after the measurement: {', '.join(names)}"))
    return found


def of(record) -> Quality | None:
    """A record's quality: as recorded, else assessed now from the readings it stores (None if not ok, or
    imported: a row of someone else's table has no readings to grade)."""
    if not record.ok or record.imported:
        return None
    if record.quality in QUALITIES:
        return Quality(record.quality, tuple(record.quality_reasons or ()))
    return assess(record.latency, record.settings)


def _plain(reading) -> dict | None:
    """A typed reading (LatencyStats, RunnerSettings) as the plain dict :func:`assess` reads."""
    return reading.to_dict() if hasattr(reading, "to_dict") else reading


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
    child over its timed window only: settings.gpu_clocks, hwprofile.measure.clocks.)"""

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

def with_quality(record, check: dict | None = None, gpu: dict | None = None, attempts: list | None = None):
    """``record`` with its quality set (and the readings it was judged on stored in its settings)."""
    if not record.ok:
        return record
    settings = record.settings.to_dict()
    if check is not None:
        settings["system_check"] = check
    if gpu is not None:
        settings["gpu_watch"] = gpu
    if attempts:
        settings["quality_attempts"] = attempts
    q = assess(record.latency, settings)
    return record.replace(settings=settings, quality=q.quality, quality_reasons=list(q.reasons))


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


def summary_line(records, path) -> str | None:
    """One line: how many ok records are not clean, and the command that re-measures them."""
    ok = [r for r in records if r.ok]
    if not ok:
        return None
    qs = [q for r in ok if (q := of(r)) is not None]  # imported records have no quality
    counts = {q: sum(1 for x in qs if x.quality == q) for q in QUALITIES}
    bad = counts["noisy"] + counts["disturbed"]
    if not bad:
        return f"quality: all {len(ok)} ok records are clean"
    redo = (f"hwprofile run --resume {path} --remeasure disturbed" if counts["disturbed"]
            else f"hwprofile run --resume {path} --remeasure unclean")
    return (f"quality: {bad} of {len(ok)} ok records are not clean ({counts['disturbed']} disturbed, "
            f"{counts['noisy']} noisy; the fits leave disturbed ones out and weight noisy ones by their spread): "
            f"re-measure on a quiet machine with {redo}"
            + (" (--remeasure unclean redoes the noisy ones too)" if counts["disturbed"] and counts["noisy"] else ""))


REMEASURE = {"disturbed": ("disturbed",), "unclean": ("noisy", "disturbed")}


def needs_remeasure(record, which: str | None) -> bool:
    """Whether ``--remeasure which`` measures ``record`` again."""
    if not which or not record.ok:
        return False
    q = of(record)
    return q is not None and q.quality in REMEASURE[which]
