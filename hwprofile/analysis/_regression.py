"""The two fits behind "does runtime follow activations or flops?", on arrays (no records).

- :func:`loglog_fit`: weighted least squares of log latency on the logs of counts (the joint fit
  ``log t = k + beta_flops log flops + beta_acts log acts``), with regression t-intervals on n - p degrees of
  freedom. The weights are the inverse variances of each record's log latency (``hwprofile.analysis.usable``),
  rescaled to mean 1, so ``sigma`` is the residual standard deviation of a typical record's log latency and
  the intervals scale with it (the residual scale is estimated, as in Knapp-Hartung meta-regression).
  Leave-one-out errors come from the hat matrix (exact for least squares).
- :func:`additive_fit`: ``t = a*flops + b*acts + c`` with a, b, c >= 0 (a compute term, an activation-traffic
  term and a fixed overhead), fitted in relative error by non-negative least squares (:func:`nnls3`, exact for
  three coefficients). The share of time that scales with activations has a residual-bootstrap interval (the
  design is kept; the weighted log residuals are resampled). Predictions are linear in the counts, so they
  cannot explode.

docs/measurement.md ("The answer") states the estimators.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike

from hwprofile._lazy import heavy

CONFIDENCE = 0.95  # of every interval
BOOTSTRAP = 500  # residual-bootstrap resamples of the additive fit (its share interval is a reading)
SEED = 0  # the bootstrap's seed: the same records always give the same interval


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and interval (``low``, ``high``)."""

    value: float
    low: float
    high: float
    se: float | None = None

    def to_dict(self) -> dict:
        return {"value": self.value, "ci": [self.low, self.high], "se": self.se}

    def above(self, threshold: float = 0.0) -> bool:
        return self.low > threshold + TOL

    def below(self, threshold: float = 0.0) -> bool:
        return self.high < threshold - TOL


#: an interval must clear its threshold by more than rounding: exact synthetic data give zero-width
#: intervals whose ends differ from the truth by ~1e-15
TOL = 1e-9


@lru_cache(maxsize=256)
def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student t critical value on ``df`` degrees of freedom (scipy.special.stdtrit)."""
    return float(heavy("scipy.special").stdtrit(df, 0.5 + confidence / 2))


@dataclass(frozen=True)
class LogLogFit:
    """``log t = intercept + sum(slope_m * (log m - centre_m))``, fitted by weighted least squares."""

    metrics: tuple[str, ...]
    intercept: float
    slopes: tuple[float, ...]
    centre: tuple[float, ...]  # weighted mean of each log count (the fit is centred there)
    cov_unscaled: tuple[tuple[float, ...], ...]  # (X'WX)^-1 over (intercept, slopes)
    sigma: float  # residual SD of log latency per record of weight 1
    df: int
    r2: float
    loo_median_abs_pct: float | None  # median |predicted/measured - 1| in %, leave-one-out
    log_range: tuple[tuple[float, float], ...]  # measured (min, max) of each log count
    confidence: float = CONFIDENCE

    def _t(self) -> float:
        return t_quantile(self.df, self.confidence) if self.df > 0 else math.inf

    def contrast(self, weights: Mapping[str, float]) -> Estimate:
        """A linear combination of slopes, e.g. ``{"acts": 1, "flops": -1}``, with its t-interval."""
        c = np.zeros(len(self.slopes) + 1)
        for m, v in weights.items():
            c[1 + self.metrics.index(m)] = v
        value = float(sum(c[1 + i] * s for i, s in enumerate(self.slopes)))
        se = self.sigma * math.sqrt(max(0.0, float(c @ np.array(self.cov_unscaled) @ c)))
        half = self._t() * se if se > 0 else 0.0
        return Estimate(value, value - half, value + half, se)

    def slope(self, metric: str) -> Estimate:
        return self.contrast({metric: 1.0})

    def inside(self, counts: Mapping[str, float], margin: float = 0.0) -> bool:
        """Whether ``counts`` lie within the measured range of every count (log margin allowed)."""
        return all(lo - margin <= math.log(counts[m]) <= hi + margin
                   for m, (lo, hi) in zip(self.metrics, self.log_range))

    def predict(self, counts: Mapping[str, float]) -> float:
        log_t = self.intercept + sum(s * (math.log(counts[m]) - c)
                                     for m, s, c in zip(self.metrics, self.slopes, self.centre))
        return math.exp(min(log_t, 700.0))


def _log_design(columns: Mapping[str, ArrayLike]) -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(columns)
    return names, np.log(np.array([np.asarray(columns[m], float) for m in names])).T


def loglog_fit(columns: Mapping[str, ArrayLike], latency: ArrayLike,
               weights: ArrayLike | None = None, confidence: float = CONFIDENCE) -> LogLogFit | None:
    """Weighted least squares of log ``latency`` on the logs of ``columns`` (name -> counts).

    None when there are fewer than p + 1 points (no degree of freedom left) or the design cannot separate
    the columns (rank deficient, e.g. every model scaled one way).
    """
    names, logs = _log_design(columns)
    y = np.log(np.asarray(latency, float))
    n, k = logs.shape
    p = k + 1
    if n < p + 1:
        return None
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    w = w / w.mean()
    centre = (w[:, None] * logs).sum(0) / w.sum()
    x = np.column_stack([np.ones(n), logs - centre])
    sw = np.sqrt(w)
    xw = x * sw[:, None]
    sv = np.linalg.svd(np.column_stack([sw / np.linalg.norm(sw), xw[:, 1:]]), compute_uv=False)
    if sv.min() <= 1e-8 * sv.max():
        return None  # counts proportional to each other (to rounding): the fit cannot tell them apart
    q, r = np.linalg.qr(xw)
    coef = np.linalg.solve(r, q.T @ (y * sw))
    resid = y - x @ coef
    df = n - p
    ss = float((w * resid ** 2).sum())
    sigma = math.sqrt(ss / df)
    r_inv = np.linalg.inv(r)
    cov = r_inv @ r_inv.T
    y_bar = float((w * y).sum() / w.sum())
    tss = float((w * (y - y_bar) ** 2).sum())
    r2 = 1.0 - ss / tss if tss > 0 else float("nan")
    hat = (q ** 2).sum(1)
    ok = hat < 1 - 1e-9  # a point that alone fixes a slope has no leave-one-out prediction
    loo = None
    if ok.any():
        e_loo = resid[ok] / (1 - hat[ok])  # measured - predicted without the point, in log
        loo = float(np.median(np.abs(np.expm1(np.clip(-e_loo, -50, 50))))) * 100
    return LogLogFit(names, float(coef[0]), tuple(float(c) for c in coef[1:]), tuple(float(c) for c in centre),
                     tuple(tuple(float(v) for v in row) for row in cov), sigma, df, r2, loo,
                     tuple((float(lo), float(hi)) for lo, hi in zip(logs.min(0), logs.max(0))), confidence)


# ------------------------------------------------------------------------------------------------ additive

@dataclass(frozen=True)
class AdditiveFit:
    """``t = a*flops + b*acts + c`` (a, b, c >= 0), fitted in relative error."""

    a_ms_per_flop: float
    b_ms_per_act: float
    c_ms: float
    share_acts: Estimate  # mean over the fitted records of b*acts / t_fitted
    share_flops: Estimate  # the same for a*flops
    share_fixed: float  # the same for c
    loo_median_abs_pct: float | None
    n: int

    def predict(self, counts: Mapping[str, float]) -> float:
        return self.a_ms_per_flop * counts["flops"] + self.b_ms_per_act * counts["acts"] + self.c_ms

    def to_dict(self) -> dict:
        return {"a_ms_per_gflop": self.a_ms_per_flop * 1e9, "b_ms_per_mact": self.b_ms_per_act * 1e6,
                "c_ms": self.c_ms, "share_acts": self.share_acts.to_dict(),
                "share_flops": self.share_flops.to_dict(), "share_fixed": self.share_fixed,
                "loo_median_abs_pct": self.loo_median_abs_pct}


#: the supports a non-negative solution of three coefficients can have, as index arrays
_SUPPORTS = tuple(np.array(c) for k in (1, 2, 3) for c in combinations(range(3), k))


def nnls3(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Non-negative least squares with three coefficients, for a stack of problems at once.

    ``design`` is (..., n, 3) and ``target`` (..., n); returns (..., 3). Exact: the optimum of this convex
    problem is the unconstrained least-squares solution on its own support, so it is the best of the
    feasible unconstrained solutions over the 7 supports (and 0). tests/test_regression.py checks it
    against scipy.optimize.nnls.
    """
    g = np.einsum("...ni,...nj->...ij", design, design)
    h = np.einsum("...ni,...n->...i", design, target)
    g = g + 1e-12 * np.trace(g, axis1=-2, axis2=-1)[..., None, None] * np.eye(3)  # keeps a singular support solvable
    best = np.zeros(h.shape)
    gain = np.zeros(h.shape[:-1])  # |b|^2 - |b - Ax|^2, at x = 0
    for sup in _SUPPORTS:
        hs = h[..., sup]
        x = np.linalg.solve(g[..., sup[:, None], sup[None, :]], hs[..., None])[..., 0]
        value = (hs * x).sum(-1)  # at an unconstrained optimum, |b|^2 - |b - Ax|^2 = h'x
        better = (x >= 0).all(-1) & (value > gain)
        gain = np.where(better, value, gain)
        best[better] = 0.0
        best[..., sup] = np.where(better[..., None], x, best[..., sup])
    return best


def _nnls_relative(f: np.ndarray, a: np.ndarray, t: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """(a, b, c) >= 0 minimising sum(w * ((a f + b acts + c) / t - 1)^2), for one ``t`` (n,) or a stack of
    them (B, n), ``sw`` = sqrt(w) of shape (n,) or (B, n); columns are scaled for conditioning."""
    scale = np.array([f.max(), a.max(), float(np.max(t))])
    cols = np.stack([f / scale[0], a / scale[1], np.ones_like(f) / scale[2]], axis=-1)  # (n, 3)
    design = cols / t[..., None] * sw[..., None]
    return nnls3(design, np.broadcast_to(sw, t.shape)) / scale


def _shares(coef: np.ndarray, f: np.ndarray, a: np.ndarray) -> tuple[float, float, float] | None:
    """Mean over the records of each term's share of the fitted time; None if a fitted time is not > 0."""
    fitted = coef[0] * f + coef[1] * a + coef[2]
    if not np.all(fitted > 0):
        return None
    return (float(np.mean(coef[1] * a / fitted)), float(np.mean(coef[0] * f / fitted)),
            float(np.mean(coef[2] / fitted)))


def additive_fit(flops: ArrayLike, acts: ArrayLike, latency: ArrayLike,
                 weights: ArrayLike | None = None, *, boot: int = BOOTSTRAP, seed: int = SEED,
                 confidence: float = CONFIDENCE) -> AdditiveFit | None:
    """The non-negative additive fit, its shares with residual-bootstrap intervals, and its LOO error.

    None with fewer than 4 points or when the fit explains nothing (every coefficient 0).
    """
    f, a, t = (np.asarray(v, float) for v in (flops, acts, latency))
    n = len(t)
    if n < 4:
        return None
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    w = w / w.mean()
    sw = np.sqrt(w)
    coef = _nnls_relative(f, a, t, sw)
    point = _shares(coef, f, a)
    if point is None:
        return None
    fitted = coef[0] * f + coef[1] * a + coef[2]
    resid = np.log(t) - np.log(fitted)
    active = max(1, int((coef > 0).sum()))
    z = sw * resid * math.sqrt(n / max(1, n - active))
    z = z - z.mean()
    rng = np.random.default_rng(seed)
    boot = max(0, int(boot))
    t_star = fitted * np.exp(rng.choice(z, (boot, n)) / sw) if boot else np.empty((0, n))
    c_star = _nnls_relative(f, a, t_star, sw) if boot else np.empty((0, 3))  # (boot, 3)
    fit_star = c_star[:, :1] * f + c_star[:, 1:2] * a + c_star[:, 2:]
    ok = np.all(fit_star > 0, axis=1)
    acts_s = (c_star[ok, 1:2] * a / fit_star[ok]).mean(1)
    flops_s = (c_star[ok, :1] * f / fit_star[ok]).mean(1)
    tail = (1 - confidence) / 2 * 100

    def est(value: float, samples: np.ndarray) -> Estimate:
        if not boot or len(samples) < boot // 2:  # no interval: a share can be anything from 0 to 1
            return Estimate(value, 0.0, 1.0, None)
        lo, hi = np.percentile(samples, [tail, 100 - tail])
        return Estimate(value, float(min(lo, value)), float(max(hi, value)), float(np.std(samples)))

    # leave-one-out, all n problems at once: a weight of 0 leaves a record out
    drop = np.where(np.eye(n, dtype=bool), 0.0, sw)
    c_loo = _nnls_relative(f, a, np.broadcast_to(t, (n, n)), drop)
    pred = c_loo[:, 0] * f + c_loo[:, 1] * a + c_loo[:, 2]
    errors = np.abs(pred / t - 1) * 100
    return AdditiveFit(float(coef[0]), float(coef[1]), float(coef[2]), est(point[0], acts_s),
                       est(point[1], flops_s), point[2], float(np.median(errors)), n)
