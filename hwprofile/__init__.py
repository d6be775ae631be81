"""hwprofile: what will this network cost on this device, and why?

Builds the scaled networks of "Fast and Accurate Model Scaling" (Dollar, Singh, Girshick,
CVPR 2021) exactly as pycls defines them, counts their flops (multiply-adds), params and
activations, and profiles them on real hardware. Importing hwprofile imports neither torch,
onnxruntime nor tensorrt; the functions that need them import them when called.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from hwprofile._lazy import heavy
from hwprofile._version import __version__
from hwprofile.errors import (
    ConfigError,
    EnvironmentProblem,
    HwprofileError,
    InputFileError,
    SchemaError,
    StrategyError,
    UnknownModelError,
)

__all__ = [
    "AnyNetSpec", "Complexity", "ConfigError", "EffNetSpec", "EnvironmentProblem", "GateOptions", "GateResult",
    "HwprofileError", "ImportResult", "InputFileError", "ModelSpec", "Profile", "Record", "SchemaError",
    "StrategyError", "TableFilter", "UnknownModelError", "__version__", "build_model", "calibrate_gate", "check",
    "complexity", "get_spec", "import_table", "model_names", "resolve", "run", "scale", "scaling_factors",
]

#: the public names defined elsewhere, by the module that defines each: loaded on first use (PEP 562), so
#: ``import hwprofile.x`` and every ``hwprofile`` command load only what they need (``hwprofile layers
#: --batch 5000`` is refused without loading profiles, fits or the gate)
_LAZY = {
    "GateOptions": "hwprofile.gate", "GateResult": "hwprofile.gate",
    "Profile": "hwprofile.profile", "Record": "hwprofile.profile",
    "ImportResult": "hwprofile.profile", "TableFilter": "hwprofile.profile", "import_table": "hwprofile.profile",
    "AnyNetSpec": "hwprofile.zoo", "EffNetSpec": "hwprofile.zoo", "ModelSpec": "hwprofile.zoo",
    "Complexity": "hwprofile.zoo", "complexity": "hwprofile.zoo", "get_spec": "hwprofile.zoo",
    "model_names": "hwprofile.zoo", "resolve": "hwprofile.zoo", "scale": "hwprofile.zoo",
    "scaling_factors": "hwprofile.zoo",
}

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from hwprofile.gate import CalibrationResult, GateOptions, GateResult
    from hwprofile.profile import ImportResult, Profile, Record, TableFilter, import_table
    from hwprofile.zoo import (
        AnyNetSpec,
        Complexity,
        EffNetSpec,
        ModelSpec,
        complexity,
        get_spec,
        model_names,
        resolve,
        scale,
        scaling_factors,
    )


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'hwprofile' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

#: ``run``, ``check``, ``calibrate_gate`` and ``build_model`` import what they call when called (the sweep, the
#: gate session, the zoo): the package's only imports inside functions (tests/test_layering.py).


def build_model(spec: ModelSpec | str) -> "torch.nn.Module":
    """A PyTorch module for a spec or zoo name (imports torch)."""
    from hwprofile.zoo import get_spec

    return heavy("hwprofile.models").build(get_spec(spec) if isinstance(spec, str) else spec)


def run(*, out: str | os.PathLike | None = None, resume: bool = False, quiet: bool = True,
        **options: Any) -> Profile:
    """Profile a sweep on this device and save it; mirrors ``hwprofile run`` (:func:`hwprofile.sweep.run`).

    >>> profile = hwprofile.run(device="cpu", strategies=("w", "dWr"), scales=(1, 4), batch_sizes=(1,))
    """
    from hwprofile.sweep import run as run_sweep

    return run_sweep(out=out, resume=resume, quiet=quiet, **options)


def check(baseline: "str | os.PathLike | Profile", current: "str | os.PathLike | Profile | None" = None,
          gate: GateOptions | None = None, **kwargs: Any) -> GateResult:
    """The regression gate; mirrors ``hwprofile check`` (:func:`hwprofile.gate.check`).

    ``baseline`` / ``current``: profile paths or loaded Profiles; ``current=None`` measures now with
    run options as for :func:`run`. Gate options are the fields of :class:`GateOptions`, as keyword
    arguments or ``gate=GateOptions(...)``; ``on_message`` receives warnings and notes. The result's
    ``exit_code`` is 0 pass, 1 regression, 3 a current measurement failed.

    >>> result = hwprofile.check("tests/data/profiles/cpu-a.json", "tests/data/profiles/cpu-slow.json")
    >>> result.passed, result.exit_code, result.counts()
    (False, 1, {'regression': 8})
    """
    from hwprofile.gate import check as check_profiles

    return check_profiles(baseline, current, gate, **kwargs)


def calibrate_gate(baseline: "str | os.PathLike", current: "str | os.PathLike | Profile | None" = None,
                   **kwargs: Any) -> "CalibrationResult":
    """One A/A session stored in ``baseline`` and this device's thresholds from all of them; mirrors
    ``hwprofile check --calibrate`` (:func:`hwprofile.gate.calibrate_gate`)."""
    from hwprofile.gate import calibrate_gate as calibrate

    return calibrate(baseline, current, **kwargs)
