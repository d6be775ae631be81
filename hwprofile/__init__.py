"""hwprofile: what will this network cost on this device, and why?

Builds the scaled networks of "Fast and Accurate Model Scaling" (Dollar, Singh, Girshick,
CVPR 2021) exactly as pycls defines them, counts their flops (multiply-adds), params and
activations, and profiles them on real hardware. Importing hwprofile imports neither torch,
onnxruntime nor tensorrt; the functions that need them import them when called.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .complexity import Complexity, complexity
from .profile import Device, LatencyStats, MemoryReading, Profile, Record, RunnerSettings, Throughput
from .gate import GateResult
from .errors import (ConfigError, EnvironmentProblem, HwprofileError, InputFileError,
                     SchemaError, StrategyError, UnknownModelError)
from .scaling import scale, scaling_factors
from .specs import AnyNetSpec, EffNetSpec, ModelSpec
from .zoo import get_spec, model_names, resolve


__all__ = [
    "AnyNetSpec", "Complexity", "ConfigError", "EffNetSpec", "EnvironmentProblem", "GateResult", "HwprofileError",
    "InputFileError", "ModelSpec", "Profile", "Record", "SchemaError", "StrategyError", "UnknownModelError",
    "__version__", "build_model", "check", "complexity", "get_spec", "model_names", "resolve", "run", "scale",
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


def check(baseline: "str | os.PathLike | Profile", current: "str | os.PathLike | Profile | None" = None,
          **kwargs: Any) -> GateResult:
    """The regression gate; mirrors ``hwprofile check`` (:func:`hwprofile.gate_session.check`).

    ``baseline`` / ``current``: profile paths or loaded Profiles; ``current=None`` measures now with
    run options as for :func:`run`. Gate options (``metrics``, ``thresholds``, ``confidence``,
    ``remeasure``, ``allow_mismatch``, ``update_baseline``, ``seed``, ...) are keyword arguments or
    ``gate=GateOptions(...)`` (:class:`hwprofile.gate_session.GateOptions`). The result's
    ``exit_code`` is 0 pass, 1 regression, 3 a current measurement failed.

    >>> result = hwprofile.check("tests/data/profiles/cpu-a.json", "tests/data/profiles/cpu-slow.json")
    >>> result.passed, result.exit_code, result.counts()
    (False, 1, {'regression': 8})
    """
    from .gate_session import check as check_profiles

    return check_profiles(baseline, current, **kwargs)
