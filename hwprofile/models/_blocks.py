"""Layer helpers (pycls ``blocks.py``); each has a twin in :mod:`hwprofile.zoo._complexity`."""

from __future__ import annotations

import math

import torch
from torch import nn


def conv2d(w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(w_in, w_out, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=bias)


def norm2d(w_in: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(w_in, eps=1e-5, momentum=0.1)


def activation(name: str) -> nn.Module:
    return nn.SiLU() if name == "silu" else nn.ReLU(inplace=True)


class SE(nn.Module):
    """Squeeze-and-Excitation: global pool, 1x1 conv, act, 1x1 conv, sigmoid, rescale."""

    def __init__(self, w_in: int, w_se: int, act: str):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.f_ex = nn.Sequential(conv2d(w_in, w_se, 1, bias=True), activation(act),
                                  conv2d(w_se, w_in, 1, bias=True), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.f_ex(self.avg_pool(x))


def init_weights(m: nn.Module) -> None:
    """pycls's ResNet-style initialisation (fan-out normal convs, unit BN, small FC)."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, mean=0.0, std=0.01)
        nn.init.zeros_(m.bias)
