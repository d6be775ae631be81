"""Does runtime follow activations or flops? Log-log fits over a profile's records, and a verdict.

The "follows" table fits the **clean** records (``hwprofile.quality``) of one (device, runner, batch,
precision, mode) group: log latency against log flops, log params and log acts (Pearson r, R², fitted
exponent), a two-variable fit on log flops and log acts; records that are not clean are listed as
``excluded``, with why. Each row gets a ``verdict`` (:func:`verdict`): ``acts``, ``flops``, ``params``,
``not distinguishable`` or ``neither``, decided by a seeded bootstrap over models of the difference in R²
and of each exponent, and by the within-scale test (latency ranked against acts and against flops among
models of the same s). docs/measurement.md ("Verdicts") states the rules.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ._lazy import heavy
from .profile import Record
from .quality import of

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
    """One row per group: n clean records used and those excluded (with why); r, R² and exponent (with its
    interval) per metric; a flops+acts fit; the within-scale test; and the verdict with its interval."""
    rows = []
    for (device, runner, batch, precision, mode), every in groups(records).items():
        recs, excluded = [], []
        for r in every:
            q = of(r)
            if q is None or q.quality == "clean":
                recs.append(r)
            else:
                excluded.append({"model": r.label, "quality": q.quality, "why": "; ".join(q.reasons)})
        row: dict = {"device_id": device, "runner": runner, "batch": batch, "precision": precision,
                     "mode": mode, "n": len(recs), "excluded": excluded}
        if len(recs) < MIN_CLEAN:
            row.update({"verdict": None, "verdict_ci": None, "verdict_basis": None, "within_scale": None,
                        "note": f"too few clean records to fit: {len(recs)} of {len(every)} (needs {MIN_CLEAN}); "
                                + ("re-measure the excluded ones on a quiet machine" if excluded
                                   else "measure more models")})
            rows.append(row)
            continue
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
        row.update(verdict(recs))
        row["note"] = None
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ verdicts

CONFIDENCE = 0.95  # of every interval below
BOOTSTRAP = 2000  # resamples
SEED = 0  # the bootstrap's seed: the same records always give the same verdict
MIN_CLEAN = 5  # clean records a group needs before it is fitted
MIN_EXPONENT = 0.1  # latency "grows" with a metric when the exponent's interval lies above this
MIN_WITHIN = 3  # records of one scale needed for it to enter the within-scale test


def _percentile_ci(samples: np.ndarray) -> list[float] | None:
    samples = samples[np.isfinite(samples)]
    if samples.size < BOOTSTRAP // 2:  # most resamples degenerate: no interval
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return [float(lo), float(hi)]


def _simple_fits(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and R² of y on x along the last axis (NaN where x does not vary; R² NaN where y does not)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    sxx, syy, sxy = (xc * xc).sum(-1), (yc * yc).sum(-1), (xc * yc).sum(-1)
    tiny = 1e-18 * x.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(sxx > tiny, sxy / np.where(sxx > tiny, sxx, 1.0), np.nan)
        slope = np.where(syy > tiny, slope, np.where(sxx > tiny, 0.0, np.nan))  # constant latency: slope 0
        r2 = np.where((sxx > tiny) & (syy > tiny), sxy * sxy / np.where((sxx > tiny) & (syy > tiny),
                                                                         sxx * syy, 1.0), np.nan)
    return slope, r2


def verdict(records: Sequence[Record]) -> dict:
    """The verdict of one group of clean records, with the intervals it rests on.

    1. Bootstrap over models (``BOOTSTRAP`` resamples of the records, seeded): each metric's exponent and R²,
       paired, so differences in R² have intervals.
    2. Latency grows with a metric when its exponent's interval lies above ``MIN_EXPONENT``. With none:
       ``neither`` when no fitted exponent exceeds it either, else ``not distinguishable`` (too uncertain).
    3. Across scales: the growing metric with the highest R² wins when the interval of its R² minus every
       other metric's R² lies above 0; else ``not distinguishable``.
    4. Within scales (:func:`within_scale`): if the rank correlation with acts minus that with flops has an
       interval above 0 (acts) or below 0 (flops), it decides a tie between acts and flops, and overrides a
       contradicting across-scale verdict into ``not distinguishable``.
    """
    y = np.log([r.median_ms for r in records])
    xs = {m: np.log([float(getattr(r, m)) for r in records]) for m in METRICS}
    rng = np.random.default_rng(SEED)
    idx = rng.integers(0, len(records), size=(BOOTSTRAP, len(records)))
    slope, r2 = {}, {}
    for m in METRICS:
        slope[m], r2[m] = _simple_fits(xs[m][idx], y[idx])
    point = {m: _simple_fits(xs[m], y) for m in METRICS}
    out: dict = {f"exponent_ci_{m}": _percentile_ci(slope[m]) for m in METRICS}
    growing = [m for m in METRICS if out[f"exponent_ci_{m}"] and out[f"exponent_ci_{m}"][0] > MIN_EXPONENT]
    ws = within_scale(records, rng)
    out["within_scale"] = ws
    if not growing:
        slopes = {m: float(point[m][0]) if np.isfinite(point[m][0]) else -np.inf for m in METRICS}
        m = max(METRICS, key=slopes.__getitem__)
        if slopes[m] > MIN_EXPONENT:  # the fit says latency grows, but its interval is too wide to rely on
            out.update(verdict="not distinguishable", verdict_ci=out[f"exponent_ci_{m}"],
                       verdict_basis=f"exponent of {m}: {slopes[m]:.2f}, but its interval reaches below "
                                     f"{MIN_EXPONENT:g} (too few models, or too alike)")
        else:
            out.update(verdict="neither", verdict_ci=out[f"exponent_ci_{m}"],
                       verdict_basis=f"exponent of {m}: no metric's exponent lies above {MIN_EXPONENT:g}")
        return out
    r2_point = {m: float(point[m][1]) if np.isfinite(point[m][1]) else -np.inf for m in METRICS}
    best = max(growing, key=r2_point.__getitem__)
    diffs = {m: _percentile_ci(r2[best] - r2[m]) for m in METRICS if m != best}
    tied = [m for m in METRICS if m != best and not (diffs[m] and diffs[m][0] > 0)]
    rival = max(tied or [m for m in METRICS if m != best], key=r2_point.__getitem__)
    across = best if not tied else "not distinguishable"
    out.update(verdict=across, verdict_ci=diffs[rival], verdict_basis=f"R² {best} - R² {rival}, across scales")
    within = None if ws is None or ws["diff_ci"] is None else (
        "acts" if ws["diff_ci"][0] > 0 else "flops" if ws["diff_ci"][1] < 0 else None)
    if within is None:
        return out
    ws_basis = "rank correlation with acts - with flops, within scales"
    if across == "not distinguishable" and set([best] + tied) <= {"acts", "flops"}:
        out.update(verdict=within, verdict_ci=ws["diff_ci"], verdict_basis=ws_basis + " (across scales: tied)")
    elif across in ("acts", "flops") and within != across:
        out.update(verdict="not distinguishable", verdict_ci=ws["diff_ci"],
                   verdict_basis=f"{ws_basis}, which points to {within} while across scales points to {across}")
    return out


def within_scale(records: Sequence[Record], rng: np.random.Generator | None = None) -> dict | None:
    """Rank correlation of latency with acts and with flops among records of the same scale, pooled over
    scales (Spearman on ranks centred within each scale), and a stratified bootstrap interval of
    rho(acts) - rho(flops). None when no scale holds ``MIN_WITHIN`` records."""
    rankdata = heavy("scipy.stats").rankdata

    rng = rng or np.random.default_rng(SEED)
    by_scale: dict[float, list[Record]] = defaultdict(list)
    for r in records:
        by_scale[float(r.scale)].append(r)
    strata = {s: rs for s, rs in sorted(by_scale.items()) if len(rs) >= MIN_WITHIN}
    if not strata:
        return None

    def pooled(arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        sums = {k: 0.0 for k in ("ya", "yf", "yy", "aa", "ff")}
        for y, a, f in arrays:
            ry, ra, rf = (rankdata(v, axis=-1) for v in (y, a, f))
            ry, ra, rf = (v - v.mean(axis=-1, keepdims=True) for v in (ry, ra, rf))
            for k, (u, v) in {"ya": (ry, ra), "yf": (ry, rf), "yy": (ry, ry), "aa": (ra, ra),
                              "ff": (rf, rf)}.items():
                sums[k] = sums[k] + (u * v).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (sums["ya"] / np.sqrt(sums["yy"] * sums["aa"]), sums["yf"] / np.sqrt(sums["yy"] * sums["ff"]))

    data = {s: tuple(np.array([float(getattr(r, k) if k != "median_ms" else r.median_ms) for r in rs])
                     for k in ("median_ms", "acts", "flops")) for s, rs in strata.items()}
    rho_a, rho_f = pooled(list(data.values()))
    boots = []
    for s, (y, a, f) in data.items():
        idx = rng.integers(0, len(y), size=(BOOTSTRAP, len(y)))
        boots.append((y[idx], a[idx], f[idx]))
    ba, bf = pooled(boots)
    return {"rho_acts": None if not np.isfinite(rho_a) else float(rho_a),
            "rho_flops": None if not np.isfinite(rho_f) else float(rho_f),
            "diff_ci": _percentile_ci(ba - bf), "n": sum(len(rs) for rs in strata.values()),
            "scales": list(strata)}


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
