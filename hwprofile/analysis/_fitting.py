"""Small log-log fits used to read growth rates and runtime models off measurements."""

from __future__ import annotations

import math
from collections.abc import Sequence


def growth_exponent(ratios_x: Sequence[float], ratios_y: Sequence[float]) -> float | None:
    """Least-squares ``e`` in ``y = x**e`` through the origin of log-log space (x=1 -> y=1).

    Returns None when no ratio differs from 1 (nothing to fit).
    """
    pairs = [(math.log(x), math.log(y)) for x, y in zip(ratios_x, ratios_y) if x > 0 and y > 0]
    denom = sum(lx * lx for lx, _ in pairs)
    if denom < 1e-12:
        return None
    return sum(lx * ly for lx, ly in pairs) / denom
