"""Does runtime follow activations or flops? The answer per group of records, and the policy behind it.

- :func:`usable`: the one quality policy of every reader (which records count, and with what weight).
- :func:`answer`: per (device, runner, batch, precision, mode) group, the joint fit
  ``log t = k + beta_flops log flops + beta_acts log acts`` with regression t-intervals, the contrast
  ``delta = beta_acts - beta_flops``, the verdict (:class:`Verdict`: acts | flops | both | neither | not
  distinguishable, by :func:`rule`), the additive model's share of time with activations, leave-one-out errors
  of both fits, and for an undecided group what would decide it (:mod:`hwprofile.analysis._design`). A
  :class:`GroupAnswer` is frozen; ``to_dict()`` is its JSON (``show --json`` key ``follows``).
- :func:`strategy_growth`, :func:`fit` and :func:`best_fit`: growth ratios per strategy and single log-log
  fits (memory predictions).

docs/measurement.md ("The answer", "Which records count, and how much") states the rules.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

import numpy as np

from hwprofile.analysis._design import Decider, what_would_decide
from hwprofile.analysis._regression import CONFIDENCE, AdditiveFit, Estimate, LogLogFit, additive_fit, loglog_fit
from hwprofile.profile import LatencyStats, Record, quality_of

METRICS = ("flops", "params", "acts")
class GroupKey(NamedTuple):
    """One row of the answer: the records of one device, runner, batch, precision and mode."""

    device_id: str
    runner: str
    batch: int
    precision: str
    mode: str


def group_key(r: Record) -> GroupKey:
    return GroupKey(r.device_id, r.runner, r.batch, r.precision, r.mode)


def groups(records: Iterable[Record]) -> dict[GroupKey, list[Record]]:
    """The :func:`usable` records (clean and noisy ok records with a latency and flops/acts counts; params are
    not needed: a table imported from elsewhere may lack them), grouped by device, runner, batch, precision,
    mode; groups without a usable record are left out (:func:`by_group` keeps them, with what was excluded)."""
    return {k: [u.record for u in v.used] for k, v in by_group(records).items() if v.used}


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


def _latency(r: Record) -> float:
    """The median latency of a record the caller knows has one (a bug otherwise)."""
    if r.median_ms is None:
        raise ValueError(f"{r.label}: no latency")
    return r.median_ms


def _design(records: Sequence[Record], metrics: Sequence[str], targets: Sequence[float]) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    x = np.array([[1.0] + [math.log(getattr(r, m)) for m in metrics] for r in records])
    y = np.log(np.asarray(targets, float))
    return x, y


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x, y, rcond=None)[0]


def fit(records: Sequence[Record], metrics: Sequence[str], target: Target = latency_ms) -> Fit | None:
    """Fit log ``target`` (default: median latency) on log ``metrics``; None if too few points."""
    points = [(r, value) for r in records if (value := target(r)) is not None and value > 0]
    if len(points) < len(metrics) + 2:
        return None
    x, y = _design([r for r, _ in points], metrics, [value for _, value in points])
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
    y = np.log([_latency(r) for r in records])
    if np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


# ------------------------------------------------------------------------------------------------ the policy

#: the smallest spread of one measurement's log latency a record is credited with: the drift between
#: measurements that a record's own readings cannot see (the quietest groups measured: sigma ~ 0.03, 1 thread,
#: median of 3 processes; docs/measurement.md "Which records count, and how much")
SIGMA_FLOOR = 0.03
Z95 = 1.959964


@dataclass(frozen=True)
class Used:
    """A record the fits use, with its weight: the inverse variance of its log latency."""

    record: Record
    weight: float  # processes / max(sd_log, SIGMA_FLOOR)^2
    sd_log: float | None  # one measurement's SD of log latency from the record's readings (None: unknown)
    processes: int
    spread_from: str  # processes | samples | none
    latency_ms: float  # the record's median latency per batch (> 0)
    flops: int  # the record's counts per image (> 0)
    acts: int


@dataclass(frozen=True)
class Excluded:
    """A record left out of every fit, and why."""

    record: Record
    why: str

    @property
    def kind(self) -> str:
        """What kind of record was left out, for counts: ``disturbed``, a status (``failed``, ``oom``...),
        ``no latency`` or ``no counts``."""
        if not self.record.ok:
            return self.record.status
        if self.why.startswith("disturbed"):
            return "disturbed"
        return "no latency" if self.why == "no latency" else "no counts"

    def to_dict(self) -> dict:
        q = quality_of(self.record)
        return {"model": self.record.label, "status": self.record.status,
                "quality": None if q is None else q.quality, "why": self.why}


@dataclass(frozen=True)
class Usable:
    used: tuple[Used, ...]
    excluded: tuple[Excluded, ...]

    @property
    def equal_weights(self) -> bool:
        """No used record carries its own spread: every weight is the same (e.g. imported tables)."""
        return all(u.spread_from == "none" for u in self.used)

    def pairs(self) -> list[tuple[Record, float]]:
        return [(u.record, u.weight) for u in self.used]


def _spread(lat: LatencyStats) -> tuple[float | None, int, str]:
    """(SD of one measurement's log latency, processes, where the SD came from) from a record's readings."""
    medians = [m for m in (lat.medians_ms or []) if m > 0]
    if len(medians) >= 2:
        return float(np.std(np.log(medians), ddof=1)), len(medians), "processes"
    ci = lat.median_ci_ms
    if ci and ci[0] > 0 and ci[1] >= ci[0]:
        return (math.log(ci[1]) - math.log(ci[0])) / (2 * Z95), 1, "samples"
    if lat.cv is not None and lat.iterations:
        return 1.2533 * lat.cv / math.sqrt(lat.iterations), 1, "samples"  # SE of a median ~ 1.2533 sd / sqrt(n)
    return None, max(1, lat.repeats or 1), "none"


def usable(records: Iterable[Record]) -> Usable:
    """The one quality policy of every reader: which records count, and how much.

    Used: ok records with a latency and flops/acts counts whose quality is ``clean`` or ``noisy``. Each is
    weighted by the inverse variance of its log latency: ``processes / max(sd, SIGMA_FLOOR)^2``, where
    ``sd`` is the SD of log latency between its processes (>= 2), else the standard error of its one
    process's median (from its 95% order-statistic interval, else ``1.2533 * cv / sqrt(iterations)``), else
    unknown (then ``SIGMA_FLOOR``: a set where no record carries its spread gets equal weights).
    Excluded, with why: failed, skipped and other non-ok records, ``disturbed`` ones, and those without a
    latency or counts.
    """
    used, excluded = [], []
    for r in records:
        q = quality_of(r)
        if not r.ok:
            excluded.append(Excluded(r, f"{r.status}" + (f": {r.reason}" if r.reason else "")))
        elif r.latency is None or not r.latency.median_ms:
            excluded.append(Excluded(r, "no latency"))
        elif not (r.flops and r.acts):
            excluded.append(Excluded(r, "no flops/acts counts"))
        elif q is not None and q.quality == "disturbed":
            excluded.append(Excluded(r, "disturbed: " + ("; ".join(q.reasons) or "-")))
        else:
            sd, k, basis = _spread(r.latency)
            weight = k / max(sd if sd is not None else SIGMA_FLOOR, SIGMA_FLOOR) ** 2
            used.append(Used(r, weight, sd, k, basis, r.latency.median_ms, r.flops, r.acts))
    return Usable(tuple(used), tuple(excluded))


def is_used(r: Record) -> bool:
    """Whether :func:`usable` uses ``r`` (a record's use does not depend on the others)."""
    return bool(usable([r]).used)


def state(r: Record) -> str:
    """A record's state for people, never a plain ``ok`` for a record the fits leave out: its quality
    (``clean``, ``noisy``, ``disturbed``) when it is ok, ``imported`` for a row of someone else's table, else
    its status (``failed``, ``oom``, ``skipped``...)."""
    if not r.ok:
        return r.status
    q = quality_of(r)
    return "imported" if q is None else q.quality


def by_group(records: Iterable[Record]) -> dict[GroupKey, Usable]:
    """Every record grouped by (device, runner, batch, precision, mode), each group split by :func:`usable`
    into the records used and those left out (with why); groups in a stable order (batch as a number)."""
    by: dict[GroupKey, list[Record]] = defaultdict(list)
    for r in records:
        by[group_key(r)].append(r)
    return {k: usable(by[k]) for k in sorted(by, key=_sort_key)}


def left_out_counts(excluded: Iterable[Excluded]) -> dict[str, int]:
    """``{"disturbed": 2, "failed": 1}``: how many records of each kind were left out."""
    return dict(sorted(Counter(e.kind for e in excluded).items()))


def left_out_text(excluded: Iterable[Excluded]) -> str:
    """``2 disturbed, 1 failed`` (empty when nothing was left out)."""
    return ", ".join(f"{n} {k}" for k, n in left_out_counts(excluded).items())


# ------------------------------------------------------------------------------------------------ the answer

MIN_MODELS = 5  # usable records a group needs before it is fitted (2 degrees of freedom)
MIN_GROWTH = 0.1  # "neither": both elasticities' intervals lie below this


class Verdict(str, Enum):
    ACTS = "acts"
    FLOPS = "flops"
    BOTH = "both"
    NEITHER = "neither"
    UNDECIDED = "not distinguishable"


@dataclass(frozen=True)
class GroupAnswer:
    """Does runtime follow activations or flops, for one (device, runner, batch, precision, mode) group."""

    device_id: str
    runner: str
    batch: int
    precision: str
    mode: str
    n_used: int
    n_total: int
    excluded: tuple[Excluded, ...]
    equal_weights: bool
    verdict: Verdict
    basis: str  # the intervals the verdict rests on, in words
    beta_flops: Estimate | None = None
    beta_acts: Estimate | None = None
    delta: Estimate | None = None  # beta_acts - beta_flops
    beta_params: Estimate | None = None  # from the flops + acts + params fit (context)
    sigma: float | None = None  # residual SD of log latency per record (the joint fit)
    df: int | None = None
    sigma_pure: float | None = None  # SD of log latency between processes of one record, pooled (pure error)
    pure_df: int | None = None
    r: dict = field(default_factory=dict, hash=False)  # Pearson r of log latency with log flops / params / acts
    r2_joint: float | None = None
    additive: AdditiveFit | None = None
    loo_joint_pct: float | None = None
    loo_additive_pct: float | None = None
    decide: Decider | None = None  # for an undecided row: what is expected to decide it
    note: str | None = None

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.device_id, self.runner, self.batch, self.precision, self.mode)

    @property
    def decided(self) -> bool:
        return self.verdict in (Verdict.ACTS, Verdict.FLOPS, Verdict.BOTH)

    @property
    def share_acts(self) -> Estimate | None:
        return None if self.additive is None else self.additive.share_acts

    @property
    def prediction_fit(self) -> str | None:
        """The fit ``predict`` and ``select`` use: the smaller leave-one-out error (additive on a tie)."""
        if self.loo_additive_pct is None:
            return None if self.loo_joint_pct is None else "joint"
        if self.loo_joint_pct is None or self.loo_additive_pct <= self.loo_joint_pct:
            return "additive"
        return "joint"

    def reading(self) -> str | None:
        """``53% [44, 60] of time scales with activations; runtime ∝ flops^0.47·acts^0.52``."""
        if self.beta_flops is None or self.beta_acts is None:
            return None
        law = f"runtime ∝ flops^{self.beta_flops.value:.2f}·acts^{self.beta_acts.value:.2f}"
        s = self.share_acts
        if s is None:
            return law
        return (f"{100 * s.value:.0f}% [{100 * s.low:.0f}, {100 * s.high:.0f}] of time scales with activations; "
                + law)

    def to_dict(self) -> dict:
        est = (lambda e: None if e is None else e.to_dict())
        return {"device_id": self.device_id, "runner": self.runner, "batch": self.batch,
                "precision": self.precision, "mode": self.mode, "n": self.n_used, "n_total": self.n_total,
                "excluded": [e.to_dict() for e in self.excluded],
                "weights": "equal (no record carries its spread)" if self.equal_weights else "measured spread",
                "verdict": self.verdict.value, "basis": self.basis,
                "beta_flops": est(self.beta_flops), "beta_acts": est(self.beta_acts), "delta": est(self.delta),
                "beta_params": est(self.beta_params), "sigma": self.sigma, "df": self.df,
                "sigma_pure": self.sigma_pure, "pure_df": self.pure_df, "r": dict(self.r),
                "r2": {m: v * v for m, v in self.r.items() if v is not None}, "r2_joint": self.r2_joint,
                "additive": None if self.additive is None else self.additive.to_dict(),
                "share_acts": est(self.share_acts), "reading": self.reading(),
                "loo_pct": {"joint": self.loo_joint_pct, "additive": self.loo_additive_pct},
                "prediction_fit": self.prediction_fit,
                "decide": None if self.decide is None else self.decide.to_dict(), "note": self.note}


def _ci(e: Estimate) -> str:
    return f"[{e.low:.2f}, {e.high:.2f}]"


def rule(beta_flops: Estimate, beta_acts: Estimate, delta: Estimate) -> tuple[Verdict, str]:
    """The verdict from the joint fit's intervals (docs/measurement.md, "The answer")."""
    f, a, d = beta_flops, beta_acts, delta
    if d.above(0) and a.above(0):
        return Verdict.ACTS, f"δ {_ci(d)} > 0 and β_acts {_ci(a)} > 0"
    if d.below(0) and f.above(0):
        return Verdict.FLOPS, f"δ {_ci(d)} < 0 and β_flops {_ci(f)} > 0"
    if not d.above(0) and not d.below(0) and f.above(0) and a.above(0):
        return Verdict.BOTH, f"δ {_ci(d)} holds 0; β_flops {_ci(f)} and β_acts {_ci(a)} > 0"
    if f.below(MIN_GROWTH) and a.below(MIN_GROWTH):
        return Verdict.NEITHER, (f"β_flops {_ci(f)} and β_acts {_ci(a)} lie below {MIN_GROWTH:g}: latency does not "
                                 "grow")
    if d.above(0) or d.below(0):
        lead, e = ("acts", a) if d.above(0) else ("flops", f)
        return Verdict.UNDECIDED, f"δ {_ci(d)} excludes 0 but β_{lead} {_ci(e)} reaches 0"
    return Verdict.UNDECIDED, (f"δ {_ci(d)} holds 0 and β_flops {_ci(f)} or β_acts {_ci(a)} reaches 0")


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _pure_error(used: Sequence[Used]) -> tuple[float | None, int | None]:
    reps = [(u.processes - 1, u.sd_log) for u in used if u.spread_from == "processes" and u.sd_log is not None]
    df = sum(k for k, _ in reps)
    if not df:
        return None, None
    return math.sqrt(sum(k * sd * sd for k, sd in reps) / df), df


def _base_model(records: Sequence[Record]) -> str | None:
    names = Counter(r.model for r in records if r.source == "zoo")
    return names.most_common(1)[0][0] if names else None


def _group_answer(key: GroupKey, records: Sequence[Record], confidence: float) -> GroupAnswer:
    u = usable(records)
    head: dict[str, Any] = dict(key._asdict(),
                                n_used=len(u.used), n_total=len(records), excluded=u.excluded,
                                equal_weights=u.equal_weights)
    if len(u.used) < MIN_MODELS:
        short = MIN_MODELS - len(u.used)
        todo = (f"re-measure the {len(u.excluded)} excluded record{'s' if len(u.excluded) > 1 else ''}"
                if len(u.excluded) >= short else f"measure {short} more model{'s' if short > 1 else ''}")
        return GroupAnswer(**head, verdict=Verdict.UNDECIDED,
                           basis=f"too few usable records to fit: {len(u.used)} of {len(records)} "
                                 f"(needs {MIN_MODELS})", note=todo)
    recs = [x.record for x in u.used]
    w = np.array([x.weight for x in u.used])
    t = np.array([x.latency_ms for x in u.used], float)
    cols = {m: np.array([float(getattr(r, m) or 0) for r in recs]) for m in METRICS}
    r_values = {m: (_pearson(np.log(cols[m]), np.log(t)) if np.all(cols[m] > 0) else None) for m in METRICS}
    sigma_pure, pure_df = _pure_error(u.used)
    joint = loglog_fit({"flops": cols["flops"], "acts": cols["acts"]}, t, w, confidence)
    add = additive_fit(cols["flops"], cols["acts"], t, w, confidence=confidence)
    context: dict[str, Any] = dict(r=r_values, sigma_pure=sigma_pure, pure_df=pure_df, additive=add,
                   loo_additive_pct=None if add is None else add.loo_median_abs_pct)
    have = [(r.strategy, float(r.scale)) for r in recs]
    if joint is None:
        d = what_would_decide(model=_base_model(recs), have=have, flops=cols["flops"], acts=cols["acts"],
                              weights=w, sigma=0.1, beta_flops=0.0, beta_acts=0.0, min_growth=MIN_GROWTH,
                              confidence=confidence)
        return GroupAnswer(**head, verdict=Verdict.UNDECIDED, decide=d, **context,
                           basis="the design cannot separate flops from acts (every model scaled alike)")
    bf, ba = joint.slope("flops"), joint.slope("acts")
    delta = joint.contrast({"acts": 1.0, "flops": -1.0})
    three = (loglog_fit(cols, t, w, confidence) if np.all(cols["params"] > 0) else None)
    verdict, basis = rule(bf, ba, delta)
    decider = None
    if verdict is Verdict.UNDECIDED:
        decider = what_would_decide(model=_base_model(recs), have=have, flops=cols["flops"], acts=cols["acts"],
                                    weights=w, sigma=joint.sigma, beta_flops=bf.value, beta_acts=ba.value,
                                    min_growth=MIN_GROWTH, confidence=confidence)
    return GroupAnswer(**head, verdict=verdict, basis=basis, beta_flops=bf, beta_acts=ba, delta=delta,
                       beta_params=None if three is None else three.slope("params"), sigma=joint.sigma,
                       df=joint.df, r2_joint=joint.r2, loo_joint_pct=joint.loo_median_abs_pct, decide=decider,
                       **context)


def answer(records: Iterable[Record], *, confidence: float = CONFIDENCE) -> list[GroupAnswer]:
    """Does runtime follow activations or flops? One :class:`GroupAnswer` per (device, runner, batch,
    precision, mode) group that holds at least one ok record; pure (the same records, the same answer)."""
    by: dict[GroupKey, list[Record]] = defaultdict(list)
    for r in records:
        by[group_key(r)].append(r)
    return [_group_answer(k, rs, confidence) for k, rs in sorted(by.items(), key=lambda kv: _sort_key(kv[0]))
            if any(r.ok for r in rs)]


def _sort_key(key: GroupKey) -> tuple:
    return tuple(str(x) if not isinstance(x, int) else f"{x:012d}" for x in key)


def joint_fit(records: Sequence[Record], confidence: float = CONFIDENCE) -> LogLogFit | None:
    """The joint log-log fit of one group's usable records (weights as :func:`usable`)."""
    u = usable(records)
    if len(u.used) < 4:
        return None
    return loglog_fit({"flops": [x.flops for x in u.used], "acts": [x.acts for x in u.used]},
                      [x.latency_ms for x in u.used], [x.weight for x in u.used], confidence)


def follows_table(records: Iterable[Record]) -> list[dict]:
    """:func:`answer` as plain JSON rows (``show --json`` key ``follows``)."""
    return [a.to_dict() for a in answer(records)]


def strategy_growth(records: Iterable[Record]) -> list[dict]:
    """Per group and strategy: latency growth with s beside flops and acts growth (ratios to base), over the
    :func:`usable` records."""
    rows = []
    for gkey, every in groups(records).items():
        by_model: dict[str, list[Used]] = defaultdict(list)
        for u in usable(every).used:
            by_model[u.record.model].append(u)
        for model, used in by_model.items():
            base = next((u for u in used if u.record.strategy is None or u.record.scale == 1.0), None)
            if base is None:
                continue
            for u in sorted(used, key=lambda u: (u.record.strategy or "", u.record.scale)):
                if u is base:
                    continue
                rows.append({"device_id": gkey.device_id, "runner": gkey.runner, "batch": gkey.batch, "mode": gkey.mode,
                             "model": model, "strategy": u.record.strategy, "scale": u.record.scale,
                             "flops_ratio": u.flops / base.flops, "acts_ratio": u.acts / base.acts,
                             "latency_ratio": u.latency_ms / base.latency_ms,
                             "latency_exponent": _exp(u.latency_ms / base.latency_ms, u.flops / base.flops)})
    return rows


def _exp(y: float, x: float) -> float | None:
    return None if abs(math.log(x)) < 1e-9 else math.log(y) / math.log(x)


def best_fit(records: Sequence[Record], target: Target = latency_ms) -> Fit | None:
    """The single log-log fit with the lowest leave-one-out error of acts, flops, flops+acts (memory models)."""
    scored = [(f.loo_median_abs_pct, f) for f in (fit(records, ("acts",), target), fit(records, ("flops",), target),
                                                    fit(records, ("flops", "acts"), target))
              if f is not None and f.loo_median_abs_pct is not None]
    return min(scored, key=lambda s: s[0])[1] if scored else None
