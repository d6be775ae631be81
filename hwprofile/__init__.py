"""hwprofile: what will this network cost on this device, and why?

Builds the scaled networks of "Fast and Accurate Model Scaling" (Dollar, Singh, Girshick,
CVPR 2021) exactly as pycls defines them, counts their flops (multiply-adds), params and
activations, and profiles them on real hardware. Importing hwprofile imports neither torch,
onnxruntime nor tensorrt; the functions that need them import them when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .complexity import Complexity, complexity
from .errors import (ConfigError, EnvironmentProblem, HwprofileError, InputFileError,
                     SchemaError, StrategyError, UnknownModelError)
from .scaling import scale, scaling_factors
from .specs import AnyNetSpec, EffNetSpec, ModelSpec
from .zoo import get_spec, model_names

__version__ = "0.1.0"

__all__ = [
    "AnyNetSpec", "Complexity", "ConfigError", "EffNetSpec", "EnvironmentProblem", "HwprofileError",
    "InputFileError", "ModelSpec", "SchemaError", "StrategyError", "UnknownModelError",
    "__version__", "build_model", "complexity", "get_spec", "model_names", "resolve", "scale",
    "scaling_factors",
]

if TYPE_CHECKING:  # pragma: no cover
    import torch


def resolve(model: str, strategy: str | None = None, s: float = 1.0) -> ModelSpec:
    """The spec of zoo model ``model``, scaled by ``strategy`` to ``s`` times its flops if given."""
    spec = get_spec(model)
    return spec if strategy is None else scale(spec, strategy, s)


def build_model(spec: ModelSpec | str) -> "torch.nn.Module":
    """A PyTorch module for a spec or zoo name (imports torch)."""
    from .models import build

    return build(get_spec(spec) if isinstance(spec, str) else spec)


def __getattr__(name: str) -> Any:  # lazy, heavier parts of the API
    raise AttributeError(f"module 'hwprofile' has no attribute {name!r}")
