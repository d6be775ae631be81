"""Model scaling from "Fast and Accurate Model Scaling", with pycls's exact rounding.

A strategy scales depth ``d``, width ``w``, group width ``g`` and resolution ``r`` of a base
network so that its flops grow by a factor ``s``: ``d * w**2 * r**2 == s``. Strategies are
written as in the paper (``d w r dw dr wr dwr dWr``), as the fast family ``alpha:A``, or as any
pycls type string (``d1_w8_g8_r1``, ``wg``, ``dwgr``, ``g`` ...). ``dWr`` is pycls's
``d1_w8_g8_r1`` (fast compound scaling, alpha = 0.8); plain letters leave group width alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwprofile.bounds import BOUNDS, shown
from hwprofile.errors import StrategyError
from hwprofile.zoo._regnet import adjust_block_compatibility
from hwprofile.zoo._specs import AnyNetSpec, EffNetSpec, ModelSpec, scaled_label

#: Input bounds, checked before any network is built (hwprofile.bounds, docs/profiles.md). The paper scales to 16x.
MAX_SCALE = BOUNDS["scale"].upper
#: the largest network a scaling may build: total blocks, channels of any layer, input side in pixels
MAX_BLOCKS = 2000
MAX_WIDTH = 1 << 16
MAX_RESOLUTION = int(BOUNDS["resolution"].upper)
MAX_BATCH = int(BOUNDS["batch"].upper)  # the largest batch a sweep, export or engine accepts

#: The paper's strategy names and the pycls type string each one means.
PAPER_STRATEGIES = {"d": "d", "w": "w", "r": "r", "dw": "dw", "dr": "dr", "wr": "wr",
                    "dwr": "dwr", "dWr": "d1_w8_g8_r1"}


@dataclass(frozen=True)
class Factors:
    """Multipliers for depth, width, group width and resolution."""

    d: float
    w: float
    g: float
    r: float


def pycls_type(strategy: str) -> str:
    """The pycls type string of a strategy name (paper name, ``alpha:A`` or pycls string)."""
    if not isinstance(strategy, str):
        raise StrategyError(f"strategy {shown(strategy)}: expected a string such as 'dWr', 'alpha:0.8' or "
                            "'d1_w8_g8_r1'")
    if strategy in PAPER_STRATEGIES:
        return PAPER_STRATEGIES[strategy]
    if strategy.startswith("alpha:"):
        alpha = _parse_float(strategy[6:], strategy)
        if not 0.0 <= alpha <= 1.0:
            raise StrategyError(f"strategy {strategy!r}: alpha must lie in [0, 1]")
        return f"d{(1 - alpha) / 2!r}_w{alpha!r}_g{alpha!r}_r{(1 - alpha) / 2!r}"
    if not any(_weights(strategy).values()):  # validates
        raise StrategyError(f"strategy {strategy!r} scales nothing (every weight is 0); give depth, width, "
                            "group width or resolution a weight > 0")
    return strategy


def _parse_float(text: str, strategy: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise StrategyError(f"strategy {strategy!r}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise StrategyError(f"strategy {strategy!r}: weights must be finite and >= 0")
    return value


def _weights(type_str: str) -> dict[str, float]:
    expected = ("expected a paper strategy (d w r dw dr wr dwr dWr), alpha:A, "
                "or a pycls type such as d1_w8_g8_r1 or wg")
    if not type_str:
        raise StrategyError(f"empty strategy: {expected}")
    if all(c in "dwgr" for c in type_str):
        return {c: 1.0 if c in type_str else 0.0 for c in "dwgr"}
    weights = {c: 0.0 for c in "dwgr"}
    for token in type_str.split("_"):
        if len(token) < 2 or token[0] not in "dwgr":
            raise StrategyError(f"unknown strategy {type_str!r}: {expected}")
        weights[token[0]] = _parse_float(token[1:], type_str)
    return weights


def scaling_factors(strategy: str, s: float) -> Factors:
    """pycls ``scaling_factors``: multipliers with ``d * w**2 * r**2 == s``."""
    s = check_scale(s)
    a = _weights(pycls_type(strategy))
    total = a["d"] + a["w"] + a["r"] or a["g"] / 2 or 1.0
    return Factors(d=s ** (a["d"] / total), w=s ** (a["w"] / total / 2.0),
                   g=s ** (a["g"] / total / 2.0), r=s ** (a["r"] / total / 2.0))


def check_scale(s: float | str) -> float:
    """``s`` as a float if it is a finite positive number, else a StrategyError."""
    if isinstance(s, bool):
        raise StrategyError(f"scale {s!r} is not a number; expected a finite number > 0")
    try:
        value = float(s)
    except (TypeError, ValueError, OverflowError):
        raise StrategyError(f"scale {shown(s)} is not a number; expected a finite number > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise StrategyError(f"scale {s!r} is invalid; expected a finite number > 0")
    if value > MAX_SCALE:
        raise StrategyError(f"scale {s!r} is too large: the limit is {MAX_SCALE:g} (the paper scales to 16)")
    return value


def _round_width(w: float, mult: float) -> int:
    return max(1, round(w * mult / 8)) * 8


def _snap_group(g: int) -> int:
    return g if g <= 2 else 4 if g <= 5 else round(g / 8) * 8


def _round_res(res: int, mult: float) -> int:
    return round(res * mult / 4) * 4


def scale(spec: ModelSpec, strategy: str, s: float) -> ModelSpec:
    """A new spec: ``spec`` scaled by ``strategy`` to about ``s`` times its flops (pycls rules)."""
    if not isinstance(spec, (AnyNetSpec, EffNetSpec)):
        raise StrategyError(f"scale: spec {shown(spec)}: expected a ModelSpec, e.g. hwprofile.get_spec('ResNet-50')")
    f = scaling_factors(strategy, s)
    _check_size(spec, strategy, s, f)
    depths = tuple(max(1, round(d * f.d)) for d in spec.depths)
    train_res, test_res = _round_res(spec.train_res, f.r), _round_res(spec.test_res, f.r)
    if train_res < 4 or test_res < 4:
        raise StrategyError(
            f"{strategy} x{s:g} collapses {spec.name}'s resolution {spec.train_res} to {train_res}; "
            "use a larger scale")
    common = dict(depths=depths, train_res=train_res, test_res=test_res,
                  name=scaled_name(spec.base or spec.name, strategy, s),
                  base=spec.base or spec.name, strategy=strategy, scale=float(s))
    if isinstance(spec, EffNetSpec):
        rounded = [_round_width(w, f.w) for w in spec.widths]
        widths, exp, _ = adjust_block_compatibility(rounded, spec.exp_ratios, [1] * len(rounded))
        return spec.replace(widths=widths, exp_ratios=exp, stem_w=_round_width(spec.stem_w, f.w),
                            head_w=_round_width(spec.head_w, f.w), **common)
    rounded = [_round_width(w, f.w) for w in spec.widths]
    snapped = [_snap_group(max(1, round(g * f.g))) for g in spec.group_widths]
    if min(snapped) < 1:
        raise StrategyError(f"{strategy} x{s:g} collapses {spec.name}'s group width to 0")
    widths, bots, groups = adjust_block_compatibility(rounded, spec.bot_muls, snapped)
    return spec.replace(widths=widths, bot_muls=bots, group_widths=groups, **common)


def _check_size(spec: ModelSpec, strategy: str, s: float, f: Factors) -> None:
    """Refuse a scaling whose network would pass :data:`MAX_BLOCKS`, :data:`MAX_WIDTH` or
    :data:`MAX_RESOLUTION` (from the factors alone: nothing is built)."""
    blocks = sum(max(1.0, d * f.d) for d in spec.depths)
    widths = [*spec.widths, getattr(spec, "stem_w", 0), getattr(spec, "head_w", 0)]
    width = max(widths) * f.w * max(1.0, *(getattr(spec, "exp_ratios", None) or [1.0]),
                                    *(1 / b for b in (getattr(spec, "bot_muls", None) or [1.0]) if b > 0))
    res = max(spec.train_res, spec.test_res) * f.r
    for value, limit, what in ((blocks, MAX_BLOCKS, "blocks"), (width, MAX_WIDTH, "channels in a layer"),
                               (res, MAX_RESOLUTION, "pixels of input side")):
        if value > limit:
            raise StrategyError(f"{strategy} x{s:g} would build {spec.base or spec.name} with about {value:.3g} "
                                f"{what}; the limit is {limit} (see docs/profiles.md, 'Input limits')")


def scaled_name(base: str, strategy: str | None, s: float) -> str:
    """Display name of a scaled model, e.g. ``EfficientNet-B0 dWr x4`` (the one label; records use it too)."""
    return scaled_label(base, strategy, s)
