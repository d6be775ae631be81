"""AnyNet (RegNet X/Y/Z, ResNet, ResNeXt) as pycls ``anynet.py`` builds it."""

from __future__ import annotations

import torch
from torch import nn

from hwprofile.models._blocks import SE, activation, conv2d, init_weights, norm2d
from hwprofile.zoo import AnyNetSpec


class BottleneckTransform(nn.Module):
    """1x1, 3x3 (grouped, strided), [SE], 1x1; the SE width comes from the block input width."""

    def __init__(self, w_in: int, w_out: int, stride: int, bot_mul: float, group_w: int,
                 se_r: float, act: str):
        super().__init__()
        w_b = int(round(w_out * bot_mul))
        w_se = int(round(w_in * se_r))
        layers: list[nn.Module] = [conv2d(w_in, w_b, 1), norm2d(w_b), activation(act),
                                   conv2d(w_b, w_b, 3, stride=stride, groups=w_b // group_w),
                                   norm2d(w_b), activation(act)]
        if w_se:
            layers.append(SE(w_b, w_se, act))
        layers += [conv2d(w_b, w_out, 1), norm2d(w_out)]
        self.f = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)


class ResBottleneckBlock(nn.Module):
    """Residual bottleneck with a projection shortcut when shape changes, then activation."""

    def __init__(self, w_in: int, w_out: int, stride: int, bot_mul: float, group_w: int,
                 se_r: float, act: str):
        super().__init__()
        self.proj = None
        if w_in != w_out or stride != 1:
            self.proj = nn.Sequential(conv2d(w_in, w_out, 1, stride=stride), norm2d(w_out))
        self.f = BottleneckTransform(w_in, w_out, stride, bot_mul, group_w, se_r, act)
        self.af = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj is None else self.proj(x)
        return self.af(shortcut + self.f(x))


class ResBottleneckLinearBlock(nn.Module):
    """RegNetZ's inverted bottleneck: identity skip only when shapes match, no final activation."""

    def __init__(self, w_in: int, w_out: int, stride: int, bot_mul: float, group_w: int,
                 se_r: float, act: str):
        super().__init__()
        self.has_skip = w_in == w_out and stride == 1
        self.f = BottleneckTransform(w_in, w_out, stride, bot_mul, group_w, se_r, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x) if self.has_skip else self.f(x)


_BLOCKS = {"res_bottleneck_block": ResBottleneckBlock,
           "res_bottleneck_linear_block": ResBottleneckLinearBlock}


def _stem(spec: AnyNetSpec) -> nn.Sequential:
    if spec.stem_type == "res_stem_in":
        return nn.Sequential(conv2d(3, spec.stem_w, 7, stride=2), norm2d(spec.stem_w),
                             activation(spec.activation), nn.MaxPool2d(3, stride=2, padding=1))
    return nn.Sequential(conv2d(3, spec.stem_w, 3, stride=2), norm2d(spec.stem_w),
                         activation(spec.activation))


def _head(spec: AnyNetSpec, w_in: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if spec.head_w > 0:
        layers += [conv2d(w_in, spec.head_w, 1), norm2d(spec.head_w), activation(spec.activation)]
        w_in = spec.head_w
    layers += [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(w_in, spec.num_classes, bias=True)]
    return nn.Sequential(*layers)


class AnyNet(nn.Module):
    """Stem, stages of blocks (stride on the first block of each stage), head."""

    def __init__(self, spec: AnyNetSpec):
        super().__init__()
        self.spec = spec
        self.stem = _stem(spec)
        block = _BLOCKS[spec.block_type]
        stages, w_in = [], spec.stem_w
        params = zip(spec.depths, spec.widths, spec.strides, spec.bot_muls, spec.group_widths)
        for d, w, s, b, g in params:
            blocks = [block(w_in if i == 0 else w, w, s if i == 0 else 1, b, g, spec.se_r, spec.activation)
                      for i in range(d)]
            stages.append(nn.Sequential(*blocks))
            w_in = w
        self.stages = nn.Sequential(*stages)
        self.head = _head(spec, w_in)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
