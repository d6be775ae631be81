"""pycls's RegNet generation and block-compatibility rules, reproduced to the integer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def generate_regnet(w_a: float, w_0: int, w_m: float, depth: int, q: int = 8) -> tuple[list[int], list[int]]:
    """Per-stage (widths, depths) of a RegNet (pycls ``regnet.generate_regnet``, numpy rounding)."""
    if not (w_a >= 0 and w_0 > 0 and w_m > 1 and w_0 % q == 0):
        raise ValueError(f"invalid RegNet parameters w_a={w_a} w_0={w_0} w_m={w_m}")
    ws_cont = np.arange(depth) * w_a + w_0
    ks = np.round(np.log(ws_cont / w_0) / np.log(w_m))
    ws_all = np.round(np.divide(w_0 * np.power(w_m, ks), q)).astype(int) * q
    ws, ds = np.unique(ws_all, return_counts=True)
    return [int(w) for w in ws], [int(d) for d in ds]


def adjust_block_compatibility(
    ws: Sequence[int], bs: Sequence[float], gs: Sequence[int]
) -> tuple[tuple[int, ...], tuple[float, ...], tuple[int, ...]]:
    """Make widths, bottleneck multipliers and group widths compatible (pycls ``blocks``).

    The bottleneck width ``w*b`` is rounded to a multiple of the group width (and of ``b``
    when ``b > 1``); Python's round-half-to-even is used, as in pycls.
    """
    if not len(ws) == len(bs) == len(gs):
        raise ValueError("widths, bottleneck multipliers and group widths differ in length")
    out_w, out_g = [], []
    for w, b, g in zip(ws, bs, gs):
        if not (w > 0 and b > 0 and g > 0):
            raise ValueError(f"non-positive width {w}, bottleneck {b} or group width {g}")
        v = int(max(1, w * b))
        g = int(min(g, v))
        m = math.lcm(g, int(b)) if b > 1 else g
        v = max(m, int(round(v / m) * m))
        w = int(v / b)
        if (w * b) % g != 0:
            raise ValueError(f"incompatible width {w}, bottleneck {b}, group width {g}")
        out_w.append(w)
        out_g.append(g)
    return tuple(out_w), tuple(bs), tuple(out_g)
