"""Record quality: was a measurement taken on a quiet machine? Graded from what a record stores.

Every ``ok`` record gets ``quality``: ``clean``, ``noisy`` or ``disturbed``, with ``quality_reasons``
(each a short sentence with the number that decided it). The inputs are what a record already carries
(``settings.foreign_cpu_cores`` per process, the latency CV and the spread between processes) and, on a
GPU, what NVML said: over the timed window only, read by the measuring child (``settings.gpu_clocks``: the
share of time each limiter held the clocks below the application clocks; idle, LOW_UTILIZATION, is recorded
apart and is no disturbance; :mod:`hwprofile.trackers.clocks`), and around the measurement, read by this
process (``settings.gpu_watch``: other processes on the GPU, clocks-event reasons after it). The thresholds
are the block of constants below, documented in docs/measurement.md ("Record quality").

Grading reads what a record stores and nothing else: this module never measures. Checking the machine and
re-measuring a disturbed record are :mod:`hwprofile.measure._quiet`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwprofile.vocabulary import QUALITIES

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
#: re-measuring: default retries of a disturbed record and the first back-off (doubled each time)
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 5.0

# NVML's clocks-event reason bits (nvmlClocksEventReason*); the perf-policy counters are measure.clocks.POLICIES
_EVENT_BITS = {0x4: "power cap (software)", 0x8: "hardware slowdown", 0x10: "sync boost",
               0x20: "thermal (software)", 0x40: "thermal (hardware)", 0x80: "power brake (hardware)"}
_DISTURBING_EVENTS = 0x8 | 0x20 | 0x40 | 0x80


# ------------------------------------------------------------------------------------------------ assessment

@dataclass(frozen=True)
class Grade:
    quality: str
    reasons: tuple[str, ...] = ()


def _worst(found: list[tuple[str, str]]) -> Grade:
    order = {q: i for i, q in enumerate(QUALITIES)}
    level = max((q for q, _ in found), key=order.__getitem__, default="clean")
    return Grade(level, tuple(text for _, text in found))


def _grade(value: float | None, noisy: float, disturbed: float, text: str, unit: str = "") -> list[tuple[str, str]]:
    if value is None:
        return []
    if value > disturbed:
        return [("disturbed", f"{text} {value:.3g}{unit} > {disturbed:g}")]
    if value > noisy:
        return [("noisy", f"{text} {value:.3g}{unit} > {noisy:g}")]
    return []


def assess(latency: dict | None, settings: dict | None) -> Grade:
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


def of(record) -> Grade | None:
    """A record's quality: as recorded, else assessed now from the readings it stores (None if not ok, or
    imported: a row of someone else's table has no readings to grade)."""
    if not record.ok or record.imported:
        return None
    if record.quality in QUALITIES:
        return Grade(record.quality, tuple(record.quality_reasons or ()))
    return assess(record.latency, record.settings)


def _plain(reading) -> dict | None:
    """A typed reading (LatencyStats, RunnerSettings) as the plain dict :func:`assess` reads."""
    return reading.to_dict() if hasattr(reading, "to_dict") else reading


# ---------------------------------------------------------------------------------------------- re-measuring

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
