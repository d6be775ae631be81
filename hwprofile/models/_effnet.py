"""EfficientNet as pycls ``effnet.py`` builds it (MBConv blocks, SiLU, conv head)."""

from __future__ import annotations

import torch
from torch import nn

from hwprofile.models._blocks import SE, activation, conv2d, init_weights, norm2d
from hwprofile.zoo import EffNetSpec


class MBConv(nn.Module):
    """[1x1 expand], depthwise kxk, SE (width from the block input), 1x1 linear projection."""

    def __init__(self, w_in: int, exp_r: float, k: int, stride: int, se_r: float, w_out: int, act: str):
        super().__init__()
        w_exp = int(w_in * exp_r)
        layers: list[nn.Module] = []
        if w_exp != w_in:
            layers += [conv2d(w_in, w_exp, 1), norm2d(w_exp), activation(act)]
        layers += [conv2d(w_exp, w_exp, k, stride=stride, groups=w_exp), norm2d(w_exp), activation(act),
                   SE(w_exp, int(w_in * se_r), act), conv2d(w_exp, w_out, 1), norm2d(w_out)]
        self.f = nn.Sequential(*layers)
        self.has_skip = stride == 1 and w_in == w_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x) if self.has_skip else self.f(x)


class EffNet(nn.Module):
    """Stem, seven MBConv stages, 1x1 conv head, pooling and a linear classifier."""

    def __init__(self, spec: EffNetSpec):
        super().__init__()
        self.spec = spec
        act = spec.activation
        self.stem = nn.Sequential(conv2d(3, spec.stem_w, 3, stride=2), norm2d(spec.stem_w), activation(act))
        stages, w_in = [], spec.stem_w
        params = zip(spec.depths, spec.widths, spec.strides, spec.exp_ratios, spec.kernels)
        for d, w, s, e, k in params:
            blocks = [MBConv(w_in if i == 0 else w, e, k, s if i == 0 else 1, spec.se_r, w, act)
                      for i in range(d)]
            stages.append(nn.Sequential(*blocks))
            w_in = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(conv2d(w_in, spec.head_w, 1), norm2d(spec.head_w), activation(act),
                                  nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                  nn.Linear(spec.head_w, spec.num_classes, bias=True))
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
