"""PyTorch modules built from specs, layer for layer as pycls builds them.

Importing this package imports torch; :func:`hwprofile.build_model` imports it lazily.
"""

from __future__ import annotations

from ..specs import EffNetSpec, ModelSpec
from .anynet import AnyNet
from .effnet import EffNet

__all__ = ["AnyNet", "EffNet", "build"]


def build(spec: ModelSpec):
    """An ``nn.Module`` for ``spec`` (ResNet-style initialisation, eval mode off)."""
    return EffNet(spec) if isinstance(spec, EffNetSpec) else AnyNet(spec)
