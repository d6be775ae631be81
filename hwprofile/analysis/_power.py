"""The power of the verdict, by simulation: synthetic sweeps with a known truth through :func:`answer`.

A design is a model scaled by strategies at scales (its counts computed analytically, no torch). Each
synthetic sweep gives every (runner, batch) row one record per model with latency
``c * batch * flops^beta_flops * acts^beta_acts * exp(noise)``, noise normal with SD ``sigma`` in log latency
(lognormal), seeded. The records carry no spread of their own, so the fits weight them equally. Simulated
numbers are not measurements. tests/test_power.py runs the default design; scripts/verdict_power.py prints
the table of docs/measurement.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hwprofile.analysis._follows import Verdict, answer
from hwprofile.profile import Record
from hwprofile.zoo import complexity, get_spec, scale

#: truth name -> (beta_flops, beta_acts)
TRUTHS: dict[str, tuple[float, float]] = {"acts": (0.0, 1.0), "flops": (1.0, 0.0), "both": (0.5, 0.5),
                                          "constant": (0.0, 0.0)}
#: the verdicts that are right for each truth
RIGHT: dict[str, frozenset[str]] = {"acts": frozenset({"acts"}), "flops": frozenset({"flops"}),
                                    "both": frozenset({"both"}),
                                    "constant": frozenset({"neither", "not distinguishable"})}
#: the verdict that names the wrong pure metric
WRONG: dict[str, str] = {"acts": "flops", "flops": "acts"}
ROWS = (("ort:cpu", 1), ("ort:cpu", 8), ("torch:cpu", 1), ("torch:cpu", 8))


@dataclass(frozen=True)
class Point:
    """One model of a design: its scaling and its per-image counts."""

    strategy: str | None
    scale: float
    resolution: int
    flops: int
    params: int
    acts: int


def design_points(model: str, strategies: Sequence[str], scales: Sequence[float]) -> list[Point]:
    """The models a sweep of ``model`` x ``strategies`` x ``scales`` measures (s = 1 once), as a sweep plans them."""
    base = get_spec(model)
    out, seen = [], set()
    for s in scales:
        for st in strategies:
            key = (None, 1.0) if float(s) == 1.0 else (st, float(s))
            if key in seen:
                continue
            seen.add(key)
            spec = base if key[0] is None else scale(base, st, s)
            cx = complexity(spec)
            out.append(Point(key[0], key[1], spec.train_res, cx.flops, cx.params, cx.acts))
    return out


def synthetic_records(points: Sequence[Point], beta_flops: float, beta_acts: float, *, sigma: float, seed: int,
                      model: str = "EfficientNet-B0", rows: Sequence[tuple[str, int]] = ROWS,
                      device_id: str = "synthetic") -> list[Record]:
    """One synthetic sweep: each row gets one record per point, latency exactly the truth times lognormal noise."""
    rng = np.random.default_rng(seed)
    base = points[0]
    out = []
    for runner, batch in rows:
        noise = rng.normal(0.0, sigma, len(points)) if sigma > 0 else np.zeros(len(points))
        for p, e in zip(points, noise):
            ms = 10.0 * batch * (p.flops / base.flops) ** beta_flops * (p.acts / base.acts) ** beta_acts * np.exp(e)
            out.append(Record(device_id=device_id, model=model, strategy=p.strategy, scale=p.scale, batch=batch,
                              runner=runner, precision="fp32", mode="infer", resolution=p.resolution,
                              flops=p.flops, params=p.params, acts=p.acts, status="ok",
                              latency={"median_ms": float(ms), "repeats": 1, "timing_method": "synthetic"}))
    return out


@dataclass(frozen=True)
class Power:
    """How often each verdict came out for one truth, over ``cases`` rows (seeds x rows)."""

    truth: str
    sigma: float
    cases: int
    verdicts: Mapping[str, int]

    @property
    def right(self) -> float:
        return sum(n for v, n in self.verdicts.items() if v in RIGHT[self.truth]) / self.cases

    @property
    def wrong_metric(self) -> int:
        """Rows that named the wrong pure metric (acts for a flops truth, or flops for an acts truth)."""
        return self.verdicts.get(WRONG.get(self.truth, ""), 0)


def simulate(points: Sequence[Point], *, sigma: float, seeds: int, truths: Mapping[str, tuple[float, float]] = TRUTHS,
             rows: Sequence[tuple[str, int]] = ROWS) -> dict[str, Power]:
    """``seeds`` synthetic sweeps per truth (seeds 0, 1, ...; each a fresh draw for every row), answered."""
    out = {}
    for i, (name, (bf, ba)) in enumerate(truths.items()):
        counts: Counter = Counter()
        for seed in range(seeds):
            recs = synthetic_records(points, bf, ba, sigma=sigma, seed=1000 * i + seed, rows=rows)
            counts.update(a.verdict.value for a in answer(recs))
        out[name] = Power(name, sigma, seeds * len(rows), dict(counts))
    return out


def verdicts_of(points: Sequence[Point], beta_flops: float, beta_acts: float, *, sigma: float = 0.0,
                seed: int = 0) -> list[Verdict]:
    """The verdict of every row of one synthetic sweep."""
    return [a.verdict for a in answer(synthetic_records(points, beta_flops, beta_acts, sigma=sigma, seed=seed))]
