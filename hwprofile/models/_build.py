"""One entry point: the PyTorch network of a spec."""

from __future__ import annotations

from hwprofile.models._anynet import AnyNet
from hwprofile.models._effnet import EffNet
from hwprofile.zoo import EffNetSpec, ModelSpec


def build(spec: ModelSpec) -> AnyNet | EffNet:
    """An ``nn.Module`` for ``spec`` (ResNet-style initialisation, eval mode off)."""
    return EffNet(spec) if isinstance(spec, EffNetSpec) else AnyNet(spec)
