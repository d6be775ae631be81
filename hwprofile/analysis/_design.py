"""What a design of measurements can decide, before and after measuring (pure; no records, no measuring).

The joint fit's slopes are identified by the spread of the design in (log flops, log acts): their standard
errors are ``sigma * sqrt(c' (X'WX)^-1 c)``, so ``sqrt(c' (X'WX)^-1 c)`` is the design's standard error per
unit noise. Equal-flops pairs (``w`` and ``r`` at the same s: acts differ by sqrt(s)) carry the acts
elasticity, whose standard error falls like ``sigma / (0.5 ln s)``: large s is cheap precision.

:func:`design_se` gives those per-unit-noise errors (``run --plan`` prints them per row);
:func:`what_would_decide` says, for an undecided row, which models to add (greedily, the candidate that most
shrinks the standard errors the verdict waits on) or how many more repeats of each record are expected to
decide it, taking the fitted slopes and noise as the truth (a plug-in forecast, not a promise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from hwprofile.analysis._regression import CONFIDENCE, t_quantile
from hwprofile.errors import HwprofileError
from hwprofile.zoo import complexity, get_spec, scale

#: models considered when asking what to add: cheap-to-export strategies first (deep ``d`` exports slowly)
CANDIDATE_STRATEGIES = ("w", "r", "dWr", "wr", "dw", "d")
CANDIDATE_SCALES = (2.0, 4.0, 8.0, 16.0)
MAX_ADDED_MODELS = 6
MAX_REPEATS = 20

_C = {"flops": np.array([0.0, 1.0, 0.0]), "acts": np.array([0.0, 0.0, 1.0]),
      "delta": np.array([0.0, -1.0, 1.0])}


@lru_cache(maxsize=512)
def counts_of(model: str, strategy: str | None, s: float) -> tuple[int, int, int] | None:
    """(flops, acts, params) per image of a zoo model scaled by ``strategy`` to ``s`` (None: not in the zoo)."""
    try:
        base = get_spec(model)
        spec = base if strategy is None or float(s) == 1.0 else scale(base, strategy, s)
    except HwprofileError:
        return None
    cx = complexity(spec)
    return cx.flops, cx.acts, cx.params


def _relative(weights: ArrayLike) -> np.ndarray:
    """Weights relative to their mean."""
    w = np.asarray(weights, float)
    return w / np.mean(w)


def _matrix(log_flops: ArrayLike, log_acts: ArrayLike) -> np.ndarray:
    lf, la = np.asarray(log_flops, float), np.asarray(log_acts, float)
    return np.column_stack([np.ones(len(lf)), lf, la])


def _inverse(x: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """(X'WX)^-1, or None when the design cannot separate its columns (see :func:`separable`)."""
    xw = x * np.sqrt(w)[:, None]
    if not separable(xw):
        return None
    return np.linalg.inv(xw.T @ xw)


def separable(xw: np.ndarray) -> bool:
    """Whether a (weighted) design ``[sqrt(w), sqrt(w) * log counts...]`` has full column rank, to within 1e-8 of
    its largest singular value once the first column is projected out of the others: counts proportional to
    each other (to rounding) cannot be told apart."""
    if len(xw) < xw.shape[1]:
        return False
    first = xw[:, :1]
    rest = xw[:, 1:] - first @ (first.T @ xw[:, 1:]) / float((first ** 2).sum())
    sv = np.linalg.svd(np.column_stack([first / np.linalg.norm(first), rest]), compute_uv=False)
    return bool(sv.min() > 1e-8 * sv.max())


@dataclass(frozen=True)
class DesignSE:
    """Standard errors of the joint fit per unit noise (multiply by sigma), for a design of ``n`` records."""

    n: int
    df: int
    se_delta: float
    se_flops: float
    se_acts: float

    def decidable_delta(self, sigma: float, power_z: float = 1.2816, confidence: float = CONFIDENCE) -> float | None:
        """The |delta| this design tells from 0 in 90% of sweeps (``power_z``) at noise ``sigma``."""
        if self.df < 1:
            return None
        return (t_quantile(self.df, confidence) + power_z) * self.se_delta * sigma

    def to_dict(self) -> dict:
        return {"n": self.n, "df": self.df, "se_delta_per_sigma": self.se_delta,
                "se_flops_per_sigma": self.se_flops, "se_acts_per_sigma": self.se_acts}


def design_se(flops: ArrayLike, acts: ArrayLike, weights: ArrayLike | None = None) -> DesignSE | None:
    """Per-unit-noise standard errors of beta_flops, beta_acts and delta; None if the design cannot
    separate flops from acts (fewer than 3 distinct points, or every model scaled the same way)."""
    x = _matrix(np.log(np.asarray(flops, float)), np.log(np.asarray(acts, float)))
    w = np.ones(len(x)) if weights is None else _relative(weights)
    inv = _inverse(x, w)
    if inv is None:
        return None
    se = {k: math.sqrt(max(0.0, float(c @ inv @ c))) for k, c in _C.items()}
    return DesignSE(len(x), len(x) - 3, se["delta"], se["flops"], se["acts"])


# ------------------------------------------------------------------------------------------------ forecasts

def _routes(beta_f: float, beta_a: float, min_growth: float) -> dict[str, list[tuple[np.ndarray, float]]]:
    """Each verdict the estimates point to, with what it needs: (contrast, margin its interval must clear)."""
    delta = beta_a - beta_f
    routes: dict[str, list[tuple[np.ndarray, float]]] = {}
    if delta > 0 and beta_a > 0:
        routes["acts"] = [(_C["delta"], delta), (_C["acts"], beta_a)]
    if delta < 0 and beta_f > 0:
        routes["flops"] = [(_C["delta"], -delta), (_C["flops"], beta_f)]
    if beta_f > 0 and beta_a > 0:
        routes["both"] = [(_C["flops"], beta_f), (_C["acts"], beta_a)]
    if beta_f < min_growth and beta_a < min_growth:
        routes["neither"] = [(_C["flops"], min_growth - beta_f), (_C["acts"], min_growth - beta_a)]
    return routes


def _score(needs: list[tuple[np.ndarray, float]], inv: np.ndarray, df: int, sigma: float,
           confidence: float) -> float:
    """max over needs of t * SE / margin: below 1, each interval clears its margin."""
    if df < 1:
        return math.inf
    t = t_quantile(df, confidence)
    return max(t * sigma * math.sqrt(max(0.0, float(c @ inv @ c))) / margin for c, margin in needs)


@dataclass(frozen=True)
class Decider:
    """What is expected to decide an undecided row (a forecast from its fitted slopes and noise)."""

    points_to: str | None  # the verdict the estimates lean to (acts | flops | both | neither), None if none
    se_delta_now: float | None
    repeats: int | None  # more repeats of every record expected to decide it (None: more than MAX_REPEATS)
    add: tuple[tuple[str, float], ...]  # models to add, (strategy, s), most informative first
    add_labels: tuple[str, ...]
    se_delta_after: float | None  # expected SE(delta) once they are added
    decides: bool  # whether adding ``add`` is expected to decide
    text: str

    def to_dict(self) -> dict:
        return {"points_to": self.points_to, "se_delta_now": self.se_delta_now, "repeats": self.repeats,
                "add_models": list(self.add_labels), "add": [list(a) for a in self.add],
                "se_delta_after": self.se_delta_after, "add_decides": self.decides, "text": self.text}


def candidates(model: str, have: Iterable[tuple[str | None, float]]) -> list[tuple[str, float, float, float]]:
    """(strategy, s, log flops, log acts) of the candidate scalings of ``model`` not measured yet."""
    seen = {(st, float(s)) for st, s in have}
    out = []
    for s in CANDIDATE_SCALES:
        for st in CANDIDATE_STRATEGIES:
            if (st, s) in seen:
                continue
            c = counts_of(model, st, s)
            if c is not None:
                out.append((st, s, math.log(c[0]), math.log(c[1])))
    return out


def what_would_decide(*, model: str | None, have: Iterable[tuple[str | None, float]], flops: ArrayLike,
                      acts: ArrayLike, weights: ArrayLike, sigma: float, beta_flops: float,
                      beta_acts: float, min_growth: float, confidence: float = CONFIDENCE) -> Decider:
    """Models to add (from :data:`CANDIDATE_STRATEGIES` x :data:`CANDIDATE_SCALES` of ``model``) or repeats
    of every record expected to decide the row, taking the fitted slopes and ``sigma`` as the truth."""
    x = _matrix(np.log(np.asarray(flops, float)), np.log(np.asarray(acts, float)))
    w = _relative(weights)
    inv = _inverse(x, w)
    routes = _routes(beta_flops, beta_acts, min_growth)
    if inv is None:
        return Decider(None, None, None, (), (), None, False,
                       "the design cannot separate flops from acts: add models of equal flops and different "
                       "acts (e.g. w and r at the same s)")
    se_now = sigma * math.sqrt(float(_C["delta"] @ inv @ _C["delta"]))
    if not routes or sigma <= 0:
        return Decider(None, se_now, None, (), (), None, False, "the slopes point to no verdict")
    df = len(x) - 3
    scores = {name: _score(needs, inv, df, sigma, confidence) for name, needs in routes.items()}
    route = min(scores, key=scores.__getitem__)
    needs = routes[route]
    score = scores[route]
    repeats = None
    if math.isfinite(score):
        k = max(1, math.ceil(score ** 2 - 1))
        repeats = k if k <= MAX_REPEATS else None
    added: list[tuple[str, float]] = []
    pool = candidates(model, have) if model else []
    after, cur_inv, cur_df = score, inv, df
    while pool and after >= 1 and len(added) < MAX_ADDED_MODELS:
        xs = np.array([[1.0, lf, la] for _, _, lf, la in pool])
        u = xs @ cur_inv  # Sherman-Morrison: (M + x x')^-1 = M^-1 - (M^-1 x)(M^-1 x)' / (1 + x' M^-1 x)
        denom = 1.0 + (xs * u).sum(1)
        t = t_quantile(cur_df + 1, confidence)
        ratios = [t * sigma * np.sqrt(np.maximum(0.0, float(c @ cur_inv @ c) - (u @ c) ** 2 / denom)) / margin
                  for c, margin in needs]
        per_candidate = np.max(ratios, axis=0)
        i = int(np.argmin(per_candidate))  # ties: the earlier candidate, i.e. the smaller s, cheaper strategy
        after, cur_df = float(per_candidate[i]), cur_df + 1
        cur_inv = cur_inv - np.outer(u[i], u[i]) / denom[i]
        added.append(pool.pop(i)[:2])
    se_after = sigma * math.sqrt(float(_C["delta"] @ cur_inv @ _C["delta"])) if added else None
    labels = tuple(f"{st} x{s:g}" for st, s in added)
    decides = bool(added) and after < 1
    return Decider(route, se_now, repeats, tuple(added), labels, se_after, decides,
                   _text(route, se_now, repeats, labels, se_after, decides))


def _text(route: str, se_now: float, repeats: int | None, labels: tuple[str, ...], se_after: float | None,
          decides: bool) -> str:
    parts = []
    if labels and decides:
        parts.append(f"add {', '.join(labels)} (SE(δ) {se_now:.2f} -> {se_after:.2f})")
    if repeats is not None:
        parts.append(f"{repeats} more repeat{'s' if repeats > 1 else ''} of each record")
    if parts:
        return f"leans {route}; expected to decide: " + ", or ".join(parts)
    more = f"{len(labels)} more models (SE(δ) -> {se_after:.2f})" if labels and se_after is not None else "more models"
    return (f"leans {route}, by less than this noise resolves: even {more} or {MAX_REPEATS} repeats are not "
            f"expected to decide (SE(δ) now {se_now:.2f})")
