"""PyTorch modules built from specs, layer for layer as pycls builds them.

Importing this package imports torch; :func:`hwprofile.build_model` imports it lazily.

Modules: ``_blocks`` (pycls's building blocks), ``_anynet`` (AnyNet: ResNet, ResNeXt, RegNet), ``_effnet``
(EfficientNet), ``_build`` (a spec's network).
"""

from __future__ import annotations

from hwprofile.models._anynet import AnyNet
from hwprofile.models._build import build
from hwprofile.models._effnet import EffNet

__all__ = ["AnyNet", "EffNet", "build"]
