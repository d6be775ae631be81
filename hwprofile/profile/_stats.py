"""Latency statistics over raw samples, pooled over one or more processes (repeats).

Pure Python (no numpy): quantiles interpolate linearly like ``numpy.quantile``; the confidence
interval of the median is the distribution-free order-statistic interval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from hwprofile.profile._records import LatencyStats

Z95 = 1.959964


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default method)."""
    if not sorted_values:
        raise ValueError("no samples")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median_ci(sorted_values: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """95% CI of the median from order statistics (ranks n/2 -+ z*sqrt(n)/2); [min, max] when n < 6."""
    n = len(sorted_values)
    if n < 6:
        return sorted_values[0], sorted_values[-1]
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2 + half))
    return sorted_values[lo], sorted_values[hi]


def rel_ci_halfwidth(samples: Sequence[float]) -> float:
    """Half-width of the median's CI relative to the median (inf when undefined)."""
    values = sorted(samples)
    med = quantile(values, 0.5)
    lo, hi = median_ci(values)
    return (hi - lo) / 2 / med if med > 0 else math.inf


def latency_stats(samples_ms: Sequence[Sequence[float]], timing_method: str, noise_cv: float = 0.10) -> LatencyStats:
    """Statistics of one list of raw samples per repeat (process): the one statistics function.

    Used by measurement and by the gate's pooling of re-measurements (``hwprofile.analysis.pool``), so a
    pooled record states the same statistics a measurement of all its processes would.

    ``noisy`` is set when the pooled CV exceeds ``noise_cv`` or the per-repeat medians spread by more.
    The CI is the order-statistic CI of one repeat's median, or [min, max] of the medians for several.
    """
    runs = [list(map(float, s)) for s in samples_ms if len(s)]
    if not runs:
        raise ValueError("no samples")
    pooled = sorted(x for run in runs for x in run)
    medians = [statistics.median(run) for run in runs]
    mean = statistics.fmean(pooled)
    std = statistics.pstdev(pooled) if len(pooled) > 1 else 0.0
    cv = std / mean if mean > 0 else math.inf
    spread = max(medians) / min(medians) - 1 if min(medians) > 0 else math.inf
    ci = median_ci(pooled) if len(runs) == 1 else (min(medians), max(medians))
    return LatencyStats(
        median_ms=statistics.median(medians), mean_ms=mean, p90_ms=quantile(pooled, 0.90),
        p99_ms=quantile(pooled, 0.99), min_ms=pooled[0], max_ms=pooled[-1], std_ms=std,
        iqr_ms=quantile(pooled, 0.75) - quantile(pooled, 0.25), cv=cv,
        noisy=bool(cv > noise_cv or spread > noise_cv), median_ci_ms=[float(ci[0]), float(ci[1])],
        iterations=len(pooled), repeats=len(runs), timing_method=timing_method, samples_ms=runs,
        medians_ms=medians, repeat_spread=spread)


def typical_times(runs: list[dict[str, float]],
                  totals: list[float]) -> tuple[dict[str, float], dict[str, float], float]:
    """Per-name time over the *typical* profiled runs: the mean over the runs whose total lies in the
    interquartile range (so rows add up to a typical run, and a run another process disturbed does
    not count), the median over all runs, and the typical runs' mean total."""
    order = sorted(range(len(runs)), key=lambda i: totals[i])
    n = len(order)
    keep = order[n // 4: n - n // 4] or order
    names = dict.fromkeys(k for r in runs for k in r)
    mean = {k: statistics.fmean(runs[i].get(k, 0.0) for i in keep) for k in names}
    med = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in names}
    return mean, med, statistics.fmean(totals[i] for i in keep)


#: The latency percentiles a reader can show (``p50`` is the pooled samples' median).
PERCENTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p95_ms": 0.95, "p99_ms": 0.99}


def percentiles(latency: LatencyStats | None) -> dict[str, float | None]:
    """p50/p90/p95/p99, min, mean and max in ms of a record's latency: from its raw samples (pooled over
    processes, :func:`quantile`) when it stores them, else what its statistics hold (no p50/p95 then)."""
    out: dict[str, float | None] = {k: None for k in (*PERCENTILES, "min_ms", "mean_ms", "max_ms")}
    if latency is None:
        return out
    pooled = sorted(x for run in latency.processes() for x in run)
    if pooled:
        out.update({k: quantile(pooled, q) for k, q in PERCENTILES.items()})
        out.update(min_ms=pooled[0], mean_ms=statistics.fmean(pooled), max_ms=pooled[-1])
        return out
    out.update(p90_ms=latency.p90_ms, p99_ms=latency.p99_ms, min_ms=latency.min_ms, mean_ms=latency.mean_ms,
               max_ms=latency.max_ms)
    return out
