"""hwprofile: what will this network cost on this device, and why?

Builds the scaled networks of "Fast and Accurate Model Scaling" (Dollar, Singh, Girshick,
CVPR 2021) exactly as pycls defines them, counts their flops (multiply-adds), params and
activations, and profiles them on real hardware. Importing hwprofile imports neither torch,
onnxruntime nor tensorrt; the functions that need them import them when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import heavy
from ._version import __version__
from .complexity import Complexity, complexity
from .errors import (ConfigError, EnvironmentProblem, HwprofileError, InputFileError, SchemaError, StrategyError,
                     UnknownModelError)
from .gate import GateResult
from .gate_session import GateOptions, calibrate_gate, check
from .profile import Profile, Record
from .scaling import scale, scaling_factors
from .specs import AnyNetSpec, EffNetSpec, ModelSpec
from .sweep import run
from .zoo import get_spec, model_names, resolve

__all__ = [
    "AnyNetSpec", "Complexity", "ConfigError", "EffNetSpec", "EnvironmentProblem", "GateOptions", "GateResult",
    "HwprofileError", "InputFileError", "ModelSpec", "Profile", "Record", "SchemaError", "StrategyError",
    "UnknownModelError", "__version__", "build_model", "calibrate_gate", "check", "complexity", "get_spec",
    "model_names", "resolve", "run", "scale", "scaling_factors",
]

if TYPE_CHECKING:  # pragma: no cover
    import torch


def build_model(spec: ModelSpec | str) -> "torch.nn.Module":
    """A PyTorch module for a spec or zoo name (imports torch)."""
    return heavy("hwprofile.models").build(get_spec(spec) if isinstance(spec, str) else spec)
