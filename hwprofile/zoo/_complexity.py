"""Analytic flops, params and activations, counted exactly as pycls counts them.

flops are multiply-adds (one per MAC, as pycls and the paper); activations are the output
elements of every conv, linear and max-pool layer. All counts are per image at the spec's
training resolution. Each layer function below is the complexity twin of a builder in
:mod:`hwprofile.models` and returns a new :class:`Cx`; nothing is mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwprofile import bounds
from hwprofile.errors import ConfigError
from hwprofile.zoo._specs import AnyNetSpec, EffNetSpec, ModelSpec


@dataclass(frozen=True)
class Cx:
    """Running complexity: spatial size of the current feature map plus accumulated counts."""

    h: int
    w: int
    flops: int = 0
    params: int = 0
    acts: int = 0

    def at(self, h: int, w: int) -> "Cx":
        return Cx(h, w, self.flops, self.params, self.acts)

    def minus(self, other: "Cx") -> tuple[int, int, int]:
        return self.flops - other.flops, self.params - other.params, self.acts - other.acts


@dataclass(frozen=True)
class StageCost:
    """Counts of one part of a network (stem, a stage, head) and its output map."""

    name: str
    flops: int
    params: int
    acts: int
    out_channels: int
    out_size: int


@dataclass(frozen=True)
class Complexity:
    """Per-image counts of a network (flops are multiply-adds) with a per-stage breakdown."""

    flops: int
    params: int
    acts: int
    resolution: int
    stages: tuple[StageCost, ...] = field(default=())

    def as_dict(self) -> dict:
        return {"flops": self.flops, "params": self.params, "acts": self.acts,
                "resolution": self.resolution}


# ------------------------------- layers (pycls blocks.py) ------------------------------- #

def conv2d(cx: Cx, w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1,
           bias: bool = False) -> Cx:
    h, w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    flops = k * k * w_in * w_out * h * w // groups + (w_out * h * w if bias else 0)
    params = k * k * w_in * w_out // groups + (w_out if bias else 0)
    return Cx(h, w, cx.flops + flops, cx.params + params, cx.acts + w_out * h * w)


def norm2d(cx: Cx, w_in: int) -> Cx:
    return Cx(cx.h, cx.w, cx.flops, cx.params + 2 * w_in, cx.acts)


def pool2d(cx: Cx, w_in: int, k: int, *, stride: int = 1) -> Cx:
    h, w = (cx.h - 1) // stride + 1, (cx.w - 1) // stride + 1
    return Cx(h, w, cx.flops, cx.params, cx.acts + w_in * h * w)


def gap2d(cx: Cx) -> Cx:
    return cx.at(1, 1)


def linear(cx: Cx, w_in: int, w_out: int, *, bias: bool = False) -> Cx:
    flops = w_in * w_out + (w_out if bias else 0)
    params = w_in * w_out + (w_out if bias else 0)
    return Cx(cx.h, cx.w, cx.flops + flops, cx.params + params, cx.acts + w_out)


def se(cx: Cx, w_in: int, w_se: int) -> Cx:
    out = conv2d(conv2d(gap2d(cx), w_in, w_se, 1, bias=True), w_se, w_in, 1, bias=True)
    return out.at(cx.h, cx.w)


# ------------------------------ blocks (anynet / effnet) -------------------------------- #

def bottleneck_transform(cx: Cx, w_in: int, w_out: int, stride: int, bot_mul: float,
                         group_w: int, se_r: float) -> Cx:
    w_b = int(round(w_out * bot_mul))
    w_se = int(round(w_in * se_r))
    groups = w_b // group_w
    cx = norm2d(conv2d(cx, w_in, w_b, 1), w_b)
    cx = norm2d(conv2d(cx, w_b, w_b, 3, stride=stride, groups=groups), w_b)
    if w_se:
        cx = se(cx, w_b, w_se)
    return norm2d(conv2d(cx, w_b, w_out, 1), w_out)


def res_bottleneck_block(cx: Cx, w_in: int, w_out: int, stride: int, bot_mul: float,
                         group_w: int, se_r: float) -> Cx:
    if w_in != w_out or stride != 1:
        proj = norm2d(conv2d(cx, w_in, w_out, 1, stride=stride), w_out)
        cx = proj.at(cx.h, cx.w)
    return bottleneck_transform(cx, w_in, w_out, stride, bot_mul, group_w, se_r)


def res_bottleneck_linear_block(cx: Cx, w_in: int, w_out: int, stride: int, bot_mul: float,
                                group_w: int, se_r: float) -> Cx:
    return bottleneck_transform(cx, w_in, w_out, stride, bot_mul, group_w, se_r)


def mbconv(cx: Cx, w_in: int, exp_r: float, k: int, stride: int, se_r: float, w_out: int) -> Cx:
    w_exp = int(w_in * exp_r)
    if w_exp != w_in:
        cx = norm2d(conv2d(cx, w_in, w_exp, 1), w_exp)
    cx = norm2d(conv2d(cx, w_exp, w_exp, k, stride=stride, groups=w_exp), w_exp)
    cx = se(cx, w_exp, int(w_in * se_r))
    return norm2d(conv2d(cx, w_exp, w_out, 1), w_out)


_BLOCKS = {"res_bottleneck_block": res_bottleneck_block,
           "res_bottleneck_linear_block": res_bottleneck_linear_block}


# --------------------------------------- networks --------------------------------------- #

def _stage_cost(name: str, before: Cx, after: Cx, channels: int) -> StageCost:
    flops, params, acts = after.minus(before)
    return StageCost(name, flops, params, acts, channels, after.h)


def _anynet_parts(spec: AnyNetSpec, cx: Cx) -> list[StageCost]:
    parts = []
    before = cx
    if spec.stem_type == "res_stem_in":
        cx = norm2d(conv2d(cx, 3, spec.stem_w, 7, stride=2), spec.stem_w)
        cx = pool2d(cx, spec.stem_w, 3, stride=2)
    else:
        cx = norm2d(conv2d(cx, 3, spec.stem_w, 3, stride=2), spec.stem_w)
    parts.append(_stage_cost("stem", before, cx, spec.stem_w))
    block = _BLOCKS[spec.block_type]
    w_in = spec.stem_w
    stages = zip(spec.depths, spec.widths, spec.strides, spec.bot_muls, spec.group_widths)
    for i, (d, w, s, b, g) in enumerate(stages, start=1):
        before = cx
        for j in range(d):
            cx = block(cx, w_in if j == 0 else w, w, s if j == 0 else 1, b, g, spec.se_r)
        parts.append(_stage_cost(f"s{i}", before, cx, w))
        w_in = w
    before = cx
    if spec.head_w > 0:
        cx = norm2d(conv2d(cx, w_in, spec.head_w, 1), spec.head_w)
        w_in = spec.head_w
    cx = linear(gap2d(cx), w_in, spec.num_classes, bias=True)
    parts.append(_stage_cost("head", before, cx, spec.num_classes))
    return parts


def _effnet_parts(spec: EffNetSpec, cx: Cx) -> list[StageCost]:
    parts = []
    before = cx
    cx = norm2d(conv2d(cx, 3, spec.stem_w, 3, stride=2), spec.stem_w)
    parts.append(_stage_cost("stem", before, cx, spec.stem_w))
    w_in = spec.stem_w
    stages = zip(spec.depths, spec.widths, spec.strides, spec.exp_ratios, spec.kernels)
    for i, (d, w, s, e, k) in enumerate(stages, start=1):
        before = cx
        for j in range(d):
            cx = mbconv(cx, w_in if j == 0 else w, e, k, s if j == 0 else 1, spec.se_r, w)
        parts.append(_stage_cost(f"s{i}", before, cx, w))
        w_in = w
    before = cx
    cx = norm2d(conv2d(cx, w_in, spec.head_w, 1), spec.head_w)
    cx = linear(gap2d(cx), spec.head_w, spec.num_classes, bias=True)
    parts.append(_stage_cost("head", before, cx, spec.num_classes))
    return parts


def complexity(spec: ModelSpec, resolution: int | None = None) -> Complexity:
    """Per-image flops (multiply-adds), params and acts of ``spec`` at its train resolution (or ``resolution``)."""
    if not isinstance(spec, (AnyNetSpec, EffNetSpec)):
        raise ConfigError(f"complexity: spec {bounds.shown(spec)}: expected a ModelSpec, e.g. "
                          "hwprofile.get_spec('EfficientNet-B0')")
    res = spec.train_res if resolution is None else bounds.check("resolution", resolution, "complexity: resolution")
    start = Cx(res, res)
    parts = _effnet_parts(spec, start) if isinstance(spec, EffNetSpec) else _anynet_parts(spec, start)
    return Complexity(
        flops=sum(p.flops for p in parts), params=sum(p.params for p in parts),
        acts=sum(p.acts for p in parts), resolution=res, stages=tuple(parts),
    )
