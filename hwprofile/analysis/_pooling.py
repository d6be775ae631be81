"""One record from several processes' measurements of one configuration (the gate's re-measurements
and interleaved rounds): latency statistics recomputed from all raw samples by the one statistics
function, per-process throughputs kept, memory peaks the larger."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwprofile.profile import LatencyStats, MemoryReading, Record, Throughput, latency_stats


def pool(first: Record, extra: Record) -> Record:
    """``first`` with the processes of ``extra`` added: latency statistics recomputed from all raw
    samples by the one statistics function (median of the per-process medians, max, spread, noisy),
    per-process throughputs concatenated, memory peaks the larger of the two."""
    if not (first.ok and extra.ok and first.latency and extra.latency):
        return first if first.ok else extra
    samples = first.latency.processes() + extra.latency.processes()
    if not samples:
        return first
    return first.replace(latency=pooled_latency(first.latency, samples),
                         throughput=_pooled_throughput(first.throughput, extra.throughput),
                         memory=_pooled_memory(first.memory, extra.memory))


def pool_all(records: Sequence[Record]) -> Record:
    """One record from several measurements of one identity: the ok ones pooled (else the first)."""
    ok = [r for r in records if r.ok and r.latency]
    if not ok:
        return records[0]
    merged = ok[0]
    for r in ok[1:]:
        merged = pool(merged, r)
    return merged


def _pooled_throughput(a: Throughput | None, b: Throughput | None) -> Throughput | None:
    if not (a and b):
        return a or b
    per = [float(v) for t in (a, b) for v in (t.per_repeat_samples_per_s or [t.samples_per_s]) if v]
    return Throughput.from_dict({**a.to_dict(), "per_repeat_samples_per_s": per,
                                 "samples_per_s": float(np.exp(np.mean(np.log(per)))),
                                 "window_s": (a.window_s or 0) + (b.window_s or 0),
                                 "iterations": (a.iterations or 0) + (b.iterations or 0),
                                 "source": a.source if a.source == b.source else "timed iterations and windows"})


def _pooled_memory(a: dict[str, MemoryReading], b: dict[str, MemoryReading]) -> dict[str, MemoryReading]:
    out = dict(a)
    for name, reading in b.items():
        mine = out.get(name)
        if mine is None or reading.value_mb > mine.value_mb:
            out[name] = reading
    return out


def pooled_latency(template: LatencyStats, samples: list[list[float]], noise_cv: float = 0.10) -> LatencyStats:
    """Latency statistics of several processes' raw samples (:func:`hwprofile.profile.latency_stats`)."""
    stats = latency_stats(samples, template.timing_method or "unknown", noise_cv)
    return LatencyStats.from_dict({**stats.to_dict(), "pooled_processes": len(stats.samples_ms)})
