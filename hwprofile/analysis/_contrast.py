"""The paper's point in one line per device: at equal flops, how much slower is each strategy than ``w``?

Per (device, runner, batch, precision, mode) group and scale s, each strategy measured at s beside ``w``
gets its latency relative to ``w`` with an interval, next to its flops and acts ratios, e.g.
``x4: r/w latency 2.1x [1.9, 2.3] at 1.06x flops, 2.0x acts``. Only :func:`hwprofile.analysis.usable`
records count. The interval of the log ratio uses the group's noise: ``sigma^2 (1/w_i + 1/w_j)`` with the
joint fit's residual sigma and the records' relative weights, on the fit's degrees of freedom; without a fit
(fewer than 5 usable records) the records' own variances and a normal quantile.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from hwprofile._lazy import heavy
from hwprofile.analysis._follows import GroupKey, group_key, joint_fit, usable
from hwprofile.analysis._regression import CONFIDENCE, Estimate, t_quantile
from hwprofile.profile import Record

REFERENCE = "w"  # the strategy every other is compared with: the fewest activations for its flops


@dataclass(frozen=True)
class Contrast:
    device_id: str
    runner: str
    batch: int
    precision: str
    mode: str
    model: str
    scale: float
    strategy: str
    latency_ratio: Estimate  # latency of ``strategy`` / latency of ``w`` at the same s
    flops_ratio: float
    acts_ratio: float

    def text(self) -> str:
        lat = self.latency_ratio
        return (f"x{self.scale:g}: {self.strategy}/{REFERENCE} latency {lat.value:.2f}x [{lat.low:.2f}, "
                f"{lat.high:.2f}] at {self.flops_ratio:.2f}x flops, {self.acts_ratio:.2f}x acts")

    def to_dict(self) -> dict:
        return {"device_id": self.device_id, "runner": self.runner, "batch": self.batch,
                "precision": self.precision, "mode": self.mode, "model": self.model, "scale": self.scale,
                "strategy": self.strategy, "reference": REFERENCE, "latency_ratio": self.latency_ratio.to_dict(),
                "flops_ratio": self.flops_ratio, "acts_ratio": self.acts_ratio, "text": self.text()}


def _noise(records: list[Record], confidence: float):
    """(variance of a record's log latency as a function of its weight, critical value)."""
    used = usable(records).used
    fit = joint_fit(records, confidence)
    if fit is not None:
        mean_w = float(np.mean([u.weight for u in used]))
        return (lambda w: fit.sigma ** 2 * mean_w / w), (t_quantile(fit.df, confidence) if fit.df > 0 else math.inf)
    return (lambda w: 1.0 / w), float(heavy("scipy.special").ndtri(0.5 + confidence / 2))


def equal_flops(records: Iterable[Record], *, confidence: float = CONFIDENCE) -> list[Contrast]:
    """Every usable (strategy, s) record beside the ``w`` record of the same model, s and group."""
    by: dict[GroupKey, list[Record]] = defaultdict(list)
    for r in records:
        by[group_key(r)].append(r)
    out = []
    for key in sorted(by, key=lambda k: tuple(str(x) if not isinstance(x, int) else f"{x:012d}" for x in k)):
        group = by[key]
        used = usable(group).used
        ref = {(u.record.model, float(u.record.scale)): u for u in used
               if u.record.strategy == REFERENCE and u.record.source == "zoo"}
        pairs = [(u, ref[(u.record.model, float(u.record.scale))], strategy) for u in used
                 if (strategy := u.record.strategy) is not None and strategy != REFERENCE
                 and (u.record.model, float(u.record.scale)) in ref]
        if not pairs:
            continue
        var, crit = _noise(group, confidence)
        for u, w, strategy in sorted(pairs, key=lambda p: (p[0].record.model, p[0].record.scale, p[2])):
            log_ratio = math.log(u.latency_ms / w.latency_ms)
            se = math.sqrt(var(u.weight) + var(w.weight))
            half = crit * se
            est = Estimate(math.exp(log_ratio), math.exp(log_ratio - half), math.exp(log_ratio + half), se)
            out.append(Contrast(*key, model=u.record.model, scale=float(u.record.scale), strategy=strategy,
                                latency_ratio=est, flops_ratio=u.flops / w.flops, acts_ratio=u.acts / w.acts))
    return out
