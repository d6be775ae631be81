"""hwprofile: what will this network cost on this device, and why?

Builds the scaled networks of "Fast and Accurate Model Scaling" (Dollar, Singh, Girshick,
CVPR 2021) exactly as pycls defines them, counts their flops (multiply-adds), params and
activations, and profiles them on real hardware. Importing hwprofile imports neither torch,
onnxruntime nor tensorrt; the functions that need them import them when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .complexity import Complexity, complexity
from .profile import Device, LatencyStats, MemoryReading, Profile, Record, RunnerSettings, Throughput
from .errors import (ConfigError, EnvironmentProblem, HwprofileError, InputFileError,
                     SchemaError, StrategyError, UnknownModelError)
from .scaling import scale, scaling_factors
from .specs import AnyNetSpec, EffNetSpec, ModelSpec
from .zoo import get_spec, model_names, resolve


__all__ = [
    "AnyNetSpec", "Complexity", "ConfigError", "EffNetSpec", "EnvironmentProblem", "HwprofileError",
    "InputFileError", "ModelSpec", "Profile", "Record", "SchemaError", "StrategyError", "UnknownModelError",
    "__version__", "build_model", "complexity", "get_spec", "model_names", "resolve", "run", "scale",
    "scaling_factors",
]

if TYPE_CHECKING:  # pragma: no cover
    import torch


def build_model(spec: ModelSpec | str) -> "torch.nn.Module":
    """A PyTorch module for a spec or zoo name (imports torch)."""
    from .models import build

    return build(get_spec(spec) if isinstance(spec, str) else spec)


def run(*, out: str | None = None, resume: bool = False, quiet: bool = True, **options: Any) -> Profile:
    """Profile a sweep on this device and save it; mirrors ``hwprofile run`` (options of SweepConfig).

    >>> profile = hwprofile.run(device="cpu", strategies=("w", "dWr"), scales=(1, 4), batch_sizes=(1,))
    """
    from .sweep import SweepConfig, run_sweep

    tuples = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in options.items()}
    try:
        config = SweepConfig(**tuples)
    except TypeError as exc:
        raise ConfigError(f"hwprofile.run: {exc}") from None
    profile, _path, _notes = run_sweep(config, out, resume=resume, quiet=quiet)
    return profile
