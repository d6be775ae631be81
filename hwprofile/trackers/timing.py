"""The timing loop run inside a (child) process on a loaded runner.

Warm-up until both ``warmup_iters`` and ``warmup_s`` are reached (a time-based warm-up of a slow unit is
cut short after ``WARMUP_CAP_S``; ``warmup_s = 0`` is a fixed count); timed iterations until the
median's 95% CI half-width is within ``target_rel_ci`` (after ``min_iters``), ``budget_s`` is spent
or ``max_iters`` reached, or exactly ``iterations`` when that fixed count is set; then a
back-to-back throughput window without per-iteration synchronisation (a GPU runner's, or any runner's
with an energy meter); a CPU runner's throughput without a meter comes from its timed iterations.

With an energy meter (:mod:`hwprofile.trackers.energy`) the throughput window is at least
``energy.MIN_WINDOW_S`` long and its energy is read from fresh counter steps at both ends; with a clock
window (:mod:`hwprofile.trackers.clocks`) NVML's violation counters are read around the timed samples and
the throughput window together (the timed window), after warm-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hwprofile.profile import TimingConfig, rel_ci_halfwidth
from hwprofile.trackers import energy

MIN_SAMPLES = 3  # never stop on the budget with fewer samples than this
#: a time-based warm-up of a slow unit (over 0.1 s a run) stops after its first run once this many seconds (or the
#: timed budget, if smaller) have passed: the first run pays for allocation and kernel selection, later ones are
#: steady (docs/measurement.md)
WARMUP_CAP_S = 1.0


@dataclass(frozen=True)
class TimedRun:
    """One process's timing result."""

    samples_ms: list[float]
    stop_reason: str  # ci | budget | max_iters | count
    warmup_iters: int
    warmup_s: float
    timed_s: float
    throughput: dict | None
    energy: dict | None = None  # the throughput window's energy (hwprofile.trackers.energy)
    gpu_clocks: dict | None = None  # violation counters over the timed window (hwprofile.trackers.clocks)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def warm_up(runner, cfg: TimingConfig) -> tuple[int, float]:
    """Run untimed units; returns (iterations, seconds)."""
    start = time.perf_counter()
    iters = 0
    while True:
        elapsed = time.perf_counter() - start
        if iters >= cfg.warmup_iters and elapsed >= cfg.warmup_s:
            break
        if cfg.warmup_s > 0 and iters >= 1 and elapsed >= min(cfg.budget_s, WARMUP_CAP_S):  # a slow unit,
            break  # warm-up by time: do not spend minutes warming up (a fixed count, warmup_s = 0, runs in full)
        runner.infer()
        runner.synchronize()
        iters += 1
    return iters, time.perf_counter() - start


def sample(runner, cfg: TimingConfig) -> tuple[list[float], str, float]:
    """Timed units with adaptive stopping; returns (samples_ms, stop_reason, seconds)."""
    samples: list[float] = []
    start = time.perf_counter()
    if cfg.iterations is not None:  # a fixed count: no adaptive stop, no budget
        samples = [runner.time_once() for _ in range(cfg.iterations)]
        return samples, "count", time.perf_counter() - start
    next_check = cfg.min_iters
    while True:
        samples.append(runner.time_once())
        n = len(samples)
        if n >= cfg.max_iters:
            return samples, "max_iters", time.perf_counter() - start
        if n >= MIN_SAMPLES and time.perf_counter() - start >= cfg.budget_s:
            return samples, "budget", time.perf_counter() - start
        if n >= next_check:
            if rel_ci_halfwidth(samples) <= cfg.target_rel_ci:
                return samples, "ci", time.perf_counter() - start
            next_check = n + max(5, n // 8)


def throughput(runner, batch: int, window_s: float, meter: "energy.Meter | None" = None) -> dict | None:
    """Samples per second over a back-to-back window (one synchronisation at the end); with ``meter``, the
    window lasts at least ``energy.MIN_WINDOW_S`` and ``"energy"`` holds its reading."""
    if window_s <= 0:
        return None
    if meter is not None:
        window_s = max(window_s, energy.MIN_WINDOW_S)
    runner.synchronize()
    first = meter.fresh() if meter is not None else None
    start = time.perf_counter()
    iters = 0
    while True:
        runner.infer()
        iters += 1
        if time.perf_counter() - start >= window_s:
            runner.synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= window_s:
                break
    out: dict[str, Any] = {"samples_per_s": iters * batch / elapsed, "window_s": elapsed, "iterations": iters,
                           "batch": batch}
    if meter is not None and first is not None:
        out["energy"] = energy.window_reading(meter, first, meter.fresh(), iters * batch)
    return out


def from_samples(samples_ms: list[float], batch: int) -> dict:
    """Samples per second over the timed iterations themselves: on a CPU runner every run ends when its work
    does, so a separate back-to-back window measures the same thing again (only an energy reading needs one)."""
    seconds = sum(samples_ms) / 1000
    return {"samples_per_s": len(samples_ms) * batch / seconds, "window_s": seconds, "iterations": len(samples_ms),
            "batch": batch, "source": "timed iterations"}


def run_timed(runner, cfg: TimingConfig, batch: int, *, meter=None, clocks=None) -> TimedRun:
    """Warm-up, timed samples, throughput window; ``clocks`` (a ClockWindow) is read around the last two."""
    warm_iters, warm_s = warm_up(runner, cfg)
    if clocks is not None:
        clocks.start()
    samples, reason, timed_s = sample(runner, cfg)
    tput: dict | None
    if meter is None and cfg.throughput_window_s > 0 and getattr(runner, "device_type", None) == "cpu":
        tput = from_samples(samples, batch)  # a CPU runner runs synchronously: a window would repeat them
    else:
        tput = throughput(runner, batch, cfg.throughput_window_s, meter)
    window = clocks.stop() if clocks is not None else None
    used = tput.pop("energy", None) if tput else None
    return TimedRun(samples, reason, warm_iters, warm_s, timed_s, tput, used, window)
