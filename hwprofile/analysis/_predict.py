"""Per-device runtime models: predict latency and memory from counts; select scalings under budgets.

Latency comes from the two fits of :mod:`hwprofile.analysis._follows` over a group's :func:`~hwprofile.analysis.usable`
records: the joint log-log fit and the non-negative additive fit ``t = a*flops + b*acts + c``. The one with the
smaller leave-one-out error is used, except that the log-log fit is never asked outside the measured range of
flops and acts (it can extrapolate wildly): there the additive fit, linear in the counts, answers.

Every prediction carries its caveats (:class:`Caveat`), said beside the number rather than refused:

- ``range``: the counts lie outside the flops or acts the fit measured (:class:`MeasuredRange`);
- ``family``: the model is of another family than every model the fit measured (a RegNetY asked of a profile
  of EfficientNets): its latency per flop and per activation need not be theirs;
- ``loo``: the answering fit's median leave-one-out error is above :data:`LOO_LIMIT_PCT` (or unknown).

docs/measurement.md ("Leave-one-out errors and predictions") states the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hwprofile.analysis._compare import joins_as
from hwprofile.analysis._follows import Fit, GroupKey, best_fit, by_group, left_out_text, usable
from hwprofile.analysis._regression import AdditiveFit, LogLogFit, additive_fit, loglog_fit
from hwprofile.errors import ConfigError, HwprofileError
from hwprofile.profile import Profile, Record
from hwprofile.zoo import PAPER_STRATEGIES, complexity, get_spec, scale, zoo_name
from hwprofile.zoo import family as timm_family

DEFAULT_SELECT_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
#: a prediction whose fit misses the measured models by more than this (median leave-one-out error, %) is
#: flagged: half the time it is off by more than a quarter, about the step between neighbouring scales
#: (1.33-1.5x in flops), so it cannot rank them
LOO_LIMIT_PCT = 25.0
#: families of the zoo (``specs``) as people write them
FAMILY_NAMES = {"effnet": "EfficientNet", "regnetx": "RegNetX", "regnety": "RegNetY", "regnetz": "RegNetZ",
                "resnet": "ResNet", "resnext": "ResNeXt"}


def memory_target(r: Record) -> float | None:
    return r.memory_mb()[0]


# ------------------------------------------------------------------------------------------------ coverage

def model_family(model: str, source: str = "zoo") -> str:
    """The family of a model: a zoo model's (``effnet``, ``regnety``...), an ONNX file's own name
    (``onnx:my.onnx``: nothing says what else it resembles), timm's family of an imported row
    (``timm:resnet``), else the name itself."""
    if source == "onnx" or model.lower().endswith(".onnx"):
        return f"onnx:{Path(model).name}"
    try:
        return get_spec(model).family
    except HwprofileError:
        pass
    zoo = zoo_name(model)  # timm's name of a zoo model (regnety_040 is RegNetY-4.0GF)
    if zoo is not None:
        return get_spec(zoo).family
    fam = timm_family(model)
    return f"timm:{fam}" if fam else model


def record_family(r: Record) -> str:
    """The family of a record's model; an imported row of a zoo model counts as that zoo model."""
    alias = joins_as(r)
    return model_family(alias[0] if alias else r.model, "zoo" if alias else r.source)


def family_name(family: str) -> str:
    """``effnet`` -> ``EfficientNet``; ``onnx:my.onnx`` -> ``my.onnx``."""
    return FAMILY_NAMES.get(family, family.split(":", 1)[-1])


def _count(value: float) -> str:
    """A count for people with three significant digits: ``386M``, ``1.70G`` (never e-notation)."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size * 0.9995:
            v = value / size
            return f"{v:.{max(0, 2 - len(str(int(v))) + 1)}f}{unit}"
    return f"{value:.0f}"


def _factor(x: float) -> str:
    """``1.05``, ``4.70``, ``12.3``, ``150``."""
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


@dataclass(frozen=True)
class MeasuredRange:
    """What a group's fit measured: the range of flops and acts and the model families of its records."""

    flops: tuple[float, float]
    acts: tuple[float, float]
    families: tuple[str, ...]
    models: tuple[str, ...]  # the base models measured

    @classmethod
    def of(cls, records: Sequence[Record]) -> "MeasuredRange":
        f = [float(r.flops) for r in records if r.flops]
        a = [float(r.acts) for r in records if r.acts]
        return cls((min(f), max(f)), (min(a), max(a)), tuple(sorted({record_family(r) for r in records})),
                   tuple(sorted({r.model for r in records})))

    def beyond(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Per count outside the range, how far: the factor above the largest (or below the smallest)."""
        out = {}
        for metric, (lo, hi) in (("flops", self.flops), ("acts", self.acts)):
            v = float(counts[metric])
            if v > hi:
                out[metric] = v / hi
            elif v < lo:
                out[metric] = lo / v
        return out

    def text(self) -> str:
        """``flops 386M-1.70G, acts 6.75M-27.0M``."""
        return (f"flops {_count(self.flops[0])}-{_count(self.flops[1])}, acts {_count(self.acts[0])}-"
                f"{_count(self.acts[1])}")

    def to_dict(self) -> dict:
        return {"flops": list(self.flops), "acts": list(self.acts), "families": list(self.families),
                "models": list(self.models)}


@dataclass(frozen=True)
class Caveat:
    """Why a predicted number may not hold: ``range``, ``family`` or ``loo`` (see the module docstring)."""

    kind: str
    text: str
    short: str  # for a table cell: ``flops 4.7x out``, ``other family``, ``LOO 65%``

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "short": self.short}


def caveats(counts: Mapping[str, float], measured: MeasuredRange, loo_pct: float | None, *,
            family: str | None = None, label: str = "the model") -> tuple[Caveat, ...]:
    """The caveats of one prediction: outside the measured range, across families, an unreliable fit.

    ``family``: the predicted model's (:func:`model_family`); None skips the family check.
    """
    out = []
    far = measured.beyond(counts)
    if far:
        parts = []
        for metric, x in far.items():
            hi = (measured.flops if metric == "flops" else measured.acts)[1]
            side = "above the largest" if float(counts[metric]) > hi else "below the smallest"
            parts.append(f"{metric} {_count(float(counts[metric]))} is {_factor(x)}x {side} measured")
        worst = max(far, key=far.__getitem__)
        out.append(Caveat("range", f"outside the measured range ({measured.text()}): {'; '.join(parts)}",
                          f"{worst} {_factor(far[worst])}x out"))
    if family is not None and family not in measured.families:
        seen = ", ".join(family_name(f) for f in measured.families)
        models = ", ".join(measured.models[:3]) + (" ..." if len(measured.models) > 3 else "")
        out.append(Caveat("family", f"across families: the fit measured {seen} only ({models} and their "
                                    f"scalings); {label} is {family_name(family)}, whose latency per flop and per "
                                    "activation need not be theirs", "other family"))
    if loo_pct is None:
        out.append(Caveat("loo", "the fit has no leave-one-out error (too few records to check it)", "LOO unknown"))
    elif loo_pct > LOO_LIMIT_PCT:
        out.append(Caveat("loo", f"the fit's median leave-one-out error {loo_pct:.0f}% is above the "
                                 f"{LOO_LIMIT_PCT:g}% limit: the number is not reliable", f"LOO {loo_pct:.0f}%"))
    return tuple(out)


# ------------------------------------------------------------------------------------------------ fits

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
    measured: MeasuredRange | None = None
    caveats: tuple[Caveat, ...] = ()

    @property
    def loo_error_pct(self) -> float | None:
        return self.model.loo_pct(self.fit)

    @property
    def outside(self) -> bool:
        """The log-log fit had the smaller LOO error but the counts lie outside its measured range."""
        return self.fit != self.model.chosen

    @property
    def extrapolated(self) -> bool:
        """Outside the measured range of flops or acts, or of another family than every measured model."""
        return any(c.kind in ("range", "family") for c in self.caveats)


@dataclass(frozen=True)
class _Group:
    records: list[Record]
    model: LatencyModel
    memory: Fit | None
    measured: MeasuredRange
    n: int


def _select_groups(profile: Profile, runner: str | None, batch: int | None) -> dict[GroupKey, list[Record]]:
    """The groups asked for that hold a usable record (:func:`hwprofile.analysis.usable`)."""
    split = by_group(profile.records)
    chosen = {k: [u.record for u in v.used] for k, v in split.items()
              if v.used and (runner is None or k[1] == runner) and (batch is None or k[2] == batch)}
    if not chosen:
        have = sorted({(k[1], k[2]) for k, v in split.items() if v.used})
        what = ", ".join(f"{r} batch {b}" for r, b in have) or "no usable records"
        asked = [v for k, v in split.items() if (runner is None or k[1] == runner) and (batch is None or k[2] == batch)]
        left = left_out_text(e for v in asked for e in v.excluded)
        raise ConfigError(f"the profile has no usable records for runner={runner or 'any'} batch={batch or 'any'}"
                          + (f" (left out: {left})" if left else "") + f"; it has: {what}")
    return chosen


def _fitted(profile: Profile, runner: str | None, batch: int | None) -> dict[GroupKey, _Group]:
    out = {}
    for key, recs in _select_groups(profile, runner, batch).items():
        model = latency_model(recs)
        if model is not None:
            out[key] = _Group(recs, model, best_fit(recs, memory_target), MeasuredRange.of(recs), len(recs))
    if not out:
        raise ConfigError("too few usable records to fit a runtime model (need at least 4 clean or noisy records "
                          "per runner and batch)")
    return out


def predict(profile: Profile, counts: dict, *, runner: str | None = None, batch: int | None = None,
            measured: Iterable[Record] = (), family: str | None = None, label: str = "the model"
            ) -> list[Prediction]:
    """Predicted latency (and memory where measured) of a model with ``counts`` per device group, each with its
    caveats; ``family`` (:func:`model_family`) adds the across-families check."""
    out = []
    by_key: dict[tuple, Record] = {(r.device_id, r.runner, r.batch, r.precision, r.mode): r for r in measured}
    for key, g in _fitted(profile, runner, batch).items():
        mem = g.memory.predict(counts) if g.memory is not None else None
        m = by_key.get(key)
        ms, name = g.model.predict(counts)
        out.append(Prediction(key, ms, g.model, name, g.n, mem, m.median_ms if m else None, g.measured,
                              caveats(counts, g.measured, g.model.loo_pct(name), family=family, label=label)))
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
    """Scalings of ``model`` whose predicted latency (and memory) fit the budget, per runner and batch: those
    without caveats first, then those with (outside the measured range, of another family, an unreliable
    fit), each part largest flops first. Every row carries its ``caveats``."""
    rows = []
    cands = candidates(model, strategies, scales)
    family = model_family(model)
    for key, g in _fitted(profile, runner, batch).items():
        if max_memory_mb is not None and g.memory is None:
            raise ConfigError("--max-memory-mb: the profile has too few memory readings to fit a memory model")
        for c in cands:
            lat, name = g.model.predict(c)
            mem = g.memory.predict(c) if g.memory is not None else None
            if lat <= max_latency_ms and (max_memory_mb is None or (mem is not None and mem <= max_memory_mb)):
                found = caveats(c, g.measured, g.model.loo_pct(name), family=family, label=model)
                rows.append({**c, "device_id": key.device_id, "runner": key.runner, "batch": key.batch,
                             "mode": key.mode,
                             "predicted_ms": lat, "predicted_memory_mb": mem, "fit": name,
                             "loo_error_pct": g.model.loo_pct(name),
                             "extrapolated": any(x.kind in ("range", "family") for x in found),
                             "caveats": [x.to_dict() for x in found], "caveat": ", ".join(x.short for x in found)})
    return sorted(rows, key=lambda r: (r["runner"], r["batch"], bool(r["caveats"]), -r["flops"]))
