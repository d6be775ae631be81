"""Per-device runtime models: predict latency and memory from counts; select scalings under budgets.

Latency comes from the two fits of :mod:`hwprofile.analysis` over a group's :func:`~hwprofile.analysis.usable`
records: the joint log-log fit and the non-negative additive fit ``t = a*flops + b*acts + c``. The one with the
smaller leave-one-out error is used, except that the log-log fit is never asked outside the measured range of
flops and acts (it can extrapolate wildly): there the additive fit, linear in the counts, answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .analysis import Fit, GroupKey, best_fit, groups, usable
from .complexity import complexity
from .errors import ConfigError
from .profile import Profile, Record
from .regression import AdditiveFit, LogLogFit, additive_fit, loglog_fit
from .scaling import PAPER_STRATEGIES, scale
from .zoo import get_spec

DEFAULT_SELECT_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def memory_target(r: Record) -> float | None:
    return r.memory_mb()[0]


@dataclass(frozen=True)
class LatencyModel:
    """A group's latency model: the smaller-LOO of the joint log-log and additive fits."""

    joint: LogLogFit | None
    additive: AdditiveFit | None

    @property
    def chosen(self) -> str | None:
        """``log-log`` or ``additive``: the smaller leave-one-out error (additive on a tie or unknown)."""
        j = None if self.joint is None else self.joint.loo_median_abs_pct
        a = None if self.additive is None else self.additive.loo_median_abs_pct
        if a is None and j is None:
            return None
        if a is not None and (j is None or a <= j):
            return "additive"
        return "log-log"

    def fit_for(self, counts: Mapping[str, float]) -> str:
        """The fit that answers for ``counts``: the chosen one, but additive outside the measured range."""
        if (self.chosen == "log-log" and self.additive is not None and self.joint is not None
                and not self.joint.inside(counts)):
            return "additive"
        return self.chosen or "log-log"

    def predict(self, counts: Mapping[str, float]) -> tuple[float, str]:
        """(latency in ms, the fit that answered)."""
        name = self.fit_for(counts)
        model = self.additive if name == "additive" else self.joint
        if model is None:  # latency_model keeps a model only with the fit it chooses
            raise ValueError(f"no {name} fit to predict with")
        return model.predict(counts), name

    def loo_pct(self, name: str) -> float | None:
        model = self.additive if name == "additive" else self.joint
        return None if model is None else model.loo_median_abs_pct

    @property
    def r2(self) -> float | None:
        return None if self.joint is None else self.joint.r2


def latency_model(records: Sequence[Record]) -> LatencyModel | None:
    """The latency model of one group's records (None with fewer than 4 usable records)."""
    used = usable(records).used
    if len(used) < 4:
        return None
    w = [u.weight for u in used]
    f, a, t = [u.flops for u in used], [u.acts for u in used], [u.latency_ms for u in used]
    model = LatencyModel(loglog_fit({"flops": f, "acts": a}, t, w), additive_fit(f, a, t, w, boot=0))
    return model if model.chosen else None


@dataclass(frozen=True)
class Prediction:
    group: GroupKey
    latency_ms: float
    model: LatencyModel
    fit: str  # the fit that answered: log-log | additive
    n: int
    memory_mb: float | None = None
    measured_ms: float | None = None

    @property
    def loo_error_pct(self) -> float | None:
        return self.model.loo_pct(self.fit)

    @property
    def outside(self) -> bool:
        """The log-log fit had the smaller LOO error but the counts lie outside its measured range."""
        return self.fit != self.model.chosen


def _select_groups(profile: Profile, runner: str | None, batch: int | None) -> dict[GroupKey, list[Record]]:
    all_groups = groups(profile.records)
    chosen = {k: v for k, v in all_groups.items()
              if (runner is None or k[1] == runner) and (batch is None or k[2] == batch)}
    if not chosen:
        have = sorted({(k[1], k[2]) for k in all_groups})
        what = ", ".join(f"{r} batch {b}" for r, b in have) or "no successful records"
        raise ConfigError(f"the profile has no successful records for runner={runner or 'any'} "
                          f"batch={batch or 'any'}; it has: {what}")
    return chosen


def _memory_fit(records: Sequence[Record]) -> Fit | None:
    return best_fit([u.record for u in usable(records).used], memory_target)


def predict(profile: Profile, counts: dict, *, runner: str | None = None, batch: int | None = None,
            measured: Iterable[Record] = ()) -> list[Prediction]:
    """Predicted latency (and memory where measured) of a model with ``counts`` per device group."""
    out = []
    by_key: dict[tuple, Record] = {(r.device_id, r.runner, r.batch, r.precision, r.mode): r for r in measured}
    for key, recs in _select_groups(profile, runner, batch).items():
        model = latency_model(recs)
        if model is None:
            continue
        mf = _memory_fit(recs)
        mem = mf.predict(counts) if mf is not None else None
        m = by_key.get(key)
        ms, name = model.predict(counts)
        out.append(Prediction(key, ms, model, name, len(usable(recs).used), mem, m.median_ms if m else None))
    if not out:
        raise ConfigError("too few usable records to fit a runtime model (need at least 4 per runner and batch)")
    return out


def candidates(model: str, strategies: Sequence[str], scales: Sequence[float]) -> list[dict]:
    """Counts of every (strategy, s) scaling of ``model``; s = 1 is the base model once."""
    base = get_spec(model)
    rows, seen = [], set()
    for st in strategies:
        for s in scales:
            key = (None, 1.0) if s == 1.0 else (st, float(s))
            if key in seen:
                continue
            seen.add(key)
            spec = base if s == 1.0 else scale(base, st, s)
            cx = complexity(spec)
            rows.append({"model": base.name, "strategy": key[0], "scale": key[1], "flops": cx.flops,
                         "params": cx.params, "acts": cx.acts, "resolution": spec.train_res})
    return rows


def select(profile: Profile, model: str, max_latency_ms: float, *, max_memory_mb: float | None = None,
           runner: str | None = None, batch: int | None = None,
           strategies: Sequence[str] = tuple(PAPER_STRATEGIES), scales: Sequence[float] = DEFAULT_SELECT_SCALES
           ) -> list[dict]:
    """Scalings of ``model`` whose predicted latency (and memory) fit the budget, largest flops first."""
    rows = []
    cands = candidates(model, strategies, scales)
    for key, recs in _select_groups(profile, runner, batch).items():
        fitted, mf = latency_model(recs), _memory_fit(recs)
        if fitted is None:
            continue
        if max_memory_mb is not None and mf is None:
            raise ConfigError("--max-memory-mb: the profile has too few memory readings to fit a memory model")
        for c in cands:
            lat, name = fitted.predict(c)
            mem = mf.predict(c) if mf is not None else None
            if lat <= max_latency_ms and (max_memory_mb is None or (mem is not None and mem <= max_memory_mb)):
                rows.append({**c, "device_id": key[0], "runner": key[1], "batch": key[2], "mode": key[4],
                             "predicted_ms": lat, "predicted_memory_mb": mem, "fit": name,
                             "loo_error_pct": fitted.loo_pct(name)})
    return sorted(rows, key=lambda r: (r["runner"], r["batch"], -r["flops"]))
