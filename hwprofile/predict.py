"""Per-device runtime models: predict latency and memory from counts; select scalings under budgets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .analysis import Fit, GroupKey, best_fit, groups
from .complexity import complexity
from .errors import ConfigError
from .profile import Profile, Record
from .scaling import PAPER_STRATEGIES, scale
from .zoo import get_spec

DEFAULT_SELECT_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def memory_target(r: Record) -> float | None:
    return r.memory_mb()[0]


@dataclass(frozen=True)
class Prediction:
    group: GroupKey
    latency_ms: float
    fit: Fit
    n: int
    memory_mb: float | None = None
    measured_ms: float | None = None


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


def predict(profile: Profile, counts: dict, *, runner: str | None = None, batch: int | None = None,
            measured: Iterable[Record] = ()) -> list[Prediction]:
    """Predicted latency (and memory where measured) of a model with ``counts`` per device group."""
    out = []
    by_key = {(r.device_id, r.runner, r.batch, r.precision, r.mode): r for r in measured}
    for key, recs in _select_groups(profile, runner, batch).items():
        f = best_fit(recs)
        if f is None:
            continue
        mf = best_fit(recs, memory_target)
        mem = mf.predict(counts) if mf is not None else None
        m = by_key.get(key)
        out.append(Prediction(key, f.predict(counts), f, len(recs), mem, m.median_ms if m else None))
    if not out:
        raise ConfigError("too few successful records to fit a runtime model (need at least 3 per runner and batch)")
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
        f, mf = best_fit(recs), best_fit(recs, memory_target)
        if f is None:
            continue
        if max_memory_mb is not None and mf is None:
            raise ConfigError("--max-memory-mb: the profile has too few memory readings to fit a memory model")
        for c in cands:
            lat = f.predict(c)
            mem = mf.predict(c) if mf is not None else None
            if lat <= max_latency_ms and (max_memory_mb is None or (mem is not None and mem <= max_memory_mb)):
                rows.append({**c, "device_id": key[0], "runner": key[1], "batch": key[2], "mode": key[4],
                             "predicted_ms": lat, "predicted_memory_mb": mem, "fit": "+".join(f.metrics),
                             "loo_error_pct": f.loo_median_abs_pct})
    return sorted(rows, key=lambda r: (r["runner"], r["batch"], -r["flops"]))
