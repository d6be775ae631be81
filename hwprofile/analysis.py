"""Does runtime follow activations or flops? Log-log fits over a profile's records.

Every fit is over the ``ok`` records of one (device, runner, batch, precision, mode) group:
log latency against log flops, log params and log acts (Pearson r, R², fitted exponent),
a two-variable fit on log flops and log acts, and the metric that predicts best.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .profile import Record

METRICS = ("flops", "params", "acts")
GroupKey = tuple[str, str, int, str, str]  # device_id, runner, batch, precision, mode


def group_key(r: Record) -> GroupKey:
    return (r.device_id, r.runner, r.batch, r.precision, r.mode)


def groups(records: Iterable[Record]) -> dict[GroupKey, list[Record]]:
    """ok records with a latency and counts, grouped by device, runner, batch, precision, mode."""
    out: dict[GroupKey, list[Record]] = defaultdict(list)
    for r in records:
        if r.ok and r.median_ms and r.flops and r.params and r.acts:
            out[group_key(r)].append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(str(x) for x in kv[0])))


@dataclass(frozen=True)
class Fit:
    """Least squares ``log y = a + sum(b_i log x_i)`` with its R² and leave-one-out error."""

    metrics: tuple[str, ...]
    intercept: float
    slopes: tuple[float, ...]
    r2: float
    loo_median_abs_pct: float | None  # median |predicted/measured - 1| in %, leave-one-out

    def predict(self, values: dict[str, float]) -> float:
        log_y = self.intercept + sum(b * math.log(values[m]) for b, m in zip(self.slopes, self.metrics))
        return math.exp(min(log_y, 700.0))


Target = Callable[[Record], float | None]


def latency_ms(r: Record) -> float | None:
    return r.median_ms


def _design(records: Sequence[Record], metrics: Sequence[str], target: Target) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[1.0] + [math.log(getattr(r, m)) for m in metrics] for r in records])
    y = np.array([math.log(target(r)) for r in records])
    return x, y


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x, y, rcond=None)[0]


def fit(records: Sequence[Record], metrics: Sequence[str], target: Target = latency_ms) -> Fit | None:
    """Fit log ``target`` (default: median latency) on log ``metrics``; None if too few points."""
    records = [r for r in records if (target(r) or 0) > 0]
    if len(records) < len(metrics) + 2:
        return None
    x, y = _design(records, metrics, target)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return None
    coef = _lstsq(x, y)
    resid = y - x @ coef
    tss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / tss if tss > 0 else float("nan")
    return Fit(tuple(metrics), float(coef[0]), tuple(float(c) for c in coef[1:]), r2, _loo_error(x, y))


def _loo_error(x: np.ndarray, y: np.ndarray) -> float | None:
    """Median leave-one-out |predicted/measured - 1| in %, when each fit keeps >= 3 points."""
    if len(y) - 1 < x.shape[1] + 1:
        return None
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        if np.linalg.matrix_rank(x[keep]) < x.shape[1]:
            continue
        log_ratio = float(x[i] @ _lstsq(x[keep], y[keep])) - y[i]
        errors.append(abs(math.expm1(min(log_ratio, 50.0))) * 100)
    return float(np.median(errors)) if errors else None


def pearson(records: Sequence[Record], metric: str) -> float | None:
    if len(records) < 3:
        return None
    x = np.log([getattr(r, metric) for r in records])
    y = np.log([r.median_ms for r in records])
    if np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def follows_table(records: Iterable[Record]) -> list[dict]:
    """One row per group: r, R² and exponent per metric, a flops+acts fit, and the best predictor."""
    rows = []
    for (device, runner, batch, precision, mode), recs in groups(records).items():
        row: dict = {"device_id": device, "runner": runner, "batch": batch, "precision": precision,
                     "mode": mode, "n": len(recs)}
        for m in METRICS:
            r = pearson(recs, m)
            f = fit(recs, (m,))
            row[f"r_{m}"] = r
            row[f"r2_{m}"] = None if r is None else r * r
            row[f"exponent_{m}"] = None if f is None else f.slopes[0]
            row[f"loo_pct_{m}"] = None if f is None else f.loo_median_abs_pct
        both = fit(recs, ("flops", "acts"))
        row["r2_flops_acts"] = None if both is None else both.r2
        row["loo_pct_flops_acts"] = None if both is None else both.loo_median_abs_pct
        scored = [(row[f"r2_{m}"], m) for m in METRICS if row[f"r2_{m}"] is not None]
        row["best"] = max(scored)[1] if scored else None
        rows.append(row)
    return rows


def strategy_growth(records: Iterable[Record]) -> list[dict]:
    """Per group and strategy: latency growth with s beside flops and acts growth (ratios to base)."""
    rows = []
    for gkey, recs in groups(records).items():
        by_model: dict[str, list[Record]] = defaultdict(list)
        for r in recs:
            by_model[r.model].append(r)
        for model, mrecs in by_model.items():
            base = next((r for r in mrecs if r.strategy is None or r.scale == 1.0), None)
            if base is None:
                continue
            for r in sorted(mrecs, key=lambda r: (r.strategy or "", r.scale)):
                if r is base:
                    continue
                rows.append({"device_id": gkey[0], "runner": gkey[1], "batch": gkey[2], "mode": gkey[4],
                             "model": model, "strategy": r.strategy, "scale": r.scale,
                             "flops_ratio": r.flops / base.flops, "acts_ratio": r.acts / base.acts,
                             "latency_ratio": r.median_ms / base.median_ms,
                             "latency_exponent": _exp(r.median_ms / base.median_ms, r.flops / base.flops)})
    return rows


def _exp(y: float, x: float) -> float | None:
    return None if abs(math.log(x)) < 1e-9 else math.log(y) / math.log(x)


def best_fit(records: Sequence[Record], target: Target = latency_ms) -> Fit | None:
    """The model used for prediction: the lowest leave-one-out error of acts, flops, flops+acts."""
    candidates = [f for f in (fit(records, ("acts",), target), fit(records, ("flops",), target),
                              fit(records, ("flops", "acts"), target))
                  if f is not None and f.loo_median_abs_pct is not None]
    return min(candidates, key=lambda f: f.loo_median_abs_pct) if candidates else None
