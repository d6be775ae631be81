"""What to run (Workload), how to time it (TimingConfig) and what came out (Measurement).

All three are frozen, JSON-able records: they travel to child processes as JSON.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hwprofile import bounds
from hwprofile.errors import ConfigError
from hwprofile.profile._records import MEASURED_STATUSES as STATUSES  # noqa: F401
from hwprofile.profile._records import MODES, PRECISIONS, Mode, PositiveInt, Precision, describe_error
from hwprofile.zoo import ModelSpec, spec_from_dict, spec_to_dict  # noqa: F401

KINDS = ("spec", "onnx", "engine")


def _positive_int(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{what} must be an integer >= 1, got {value!r}")


class Workload(BaseModel):
    """What to run: a spec (torch), an .onnx file (ort) or an engine file (trt). A typed, frozen model;
    positional construction ``Workload(kind, spec, path, batch, resolution)`` is kept for callers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: Literal["spec", "onnx", "engine"]
    spec: dict[str, Any] | None
    path: str | None
    batch: PositiveInt
    resolution: PositiveInt
    precision: Precision = "fp32"
    mode: Mode = "infer"
    options: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, kind: Any = None, spec: Any = None, path: Any = None, batch: Any = None,
                 resolution: Any = None, precision: Any = "fp32", mode: Any = "infer", options: Any = None,
                 **extra: Any) -> None:
        options = {} if options is None else options
        for value, allowed, what in ((kind, KINDS, "kind"), (precision, PRECISIONS, "precision"),
                                     (mode, MODES, "mode")):
            if value not in allowed:
                raise ConfigError(f"workload {what} {value!r} is not one of: {', '.join(allowed)}")
        _positive_int(batch, "batch")
        _positive_int(resolution, "resolution")
        if kind == "spec" and not isinstance(spec, dict):
            raise ConfigError("a 'spec' workload needs spec (a dict from spec_to_dict)")
        if kind != "spec" and not path:
            raise ConfigError(f"a {kind!r} workload needs a file path")
        if not isinstance(options, dict):
            raise ConfigError(f"workload options must be a dict, got {type(options).__name__}")
        try:
            super().__init__(kind=kind, spec=spec, path=path, batch=batch, resolution=resolution,
                             precision=precision, mode=mode, options=options, **extra)
        except ValidationError as exc:
            raise ConfigError(f"workload: {describe_error(exc)}") from None

    @classmethod
    def from_spec(cls, spec: ModelSpec, batch: int = 1, resolution: int | None = None, **kw: Any) -> "Workload":
        """A torch workload; the resolution defaults to the spec's training resolution (as pycls times)."""
        return cls("spec", spec_to_dict(spec), None, batch, resolution or spec.train_res, **kw)

    @classmethod
    def from_file(cls, path: str, batch: int = 1, resolution: int = 224, **kw: Any) -> "Workload":
        """An .onnx (ort) or engine (trt) workload, by the file's suffix."""
        kind = "onnx" if str(path).lower().endswith(".onnx") else "engine"
        return cls(kind, None, str(path), batch, resolution, **kw)

    @property
    def model(self) -> str:
        """A short label: the spec's name or the file name."""
        if self.spec:
            return str(self.spec.get("name"))
        return str(self.path).rsplit("/", 1)[-1]

    def to_dict(self) -> dict:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict) -> "Workload":
        if not isinstance(data, dict):
            raise ConfigError(f"a workload must be an object, got {type(data).__name__}")
        return cls(**data)


@dataclass(frozen=True)
class TimingConfig:
    """Warm-up by count and time; timed iterations until the median's CI is narrow or the budget is spent.

    ``budget_s`` caps the timed phase of each repeat; ``repeats`` is the number of processes;
    ``target_rel_ci`` is the half-width of the 95% CI of the median relative to the median.

    Fixed counts (``run --warmup N --iterations N``, as timm's ``--num-warm-iter``/``--num-bench-iter`` and
    pycls's ``WARMUP_ITER``/``NUM_ITER``): ``warmup_s = 0`` makes the warm-up exactly ``warmup_iters`` runs;
    ``iterations`` times exactly that many runs per process, with no adaptive stop and no time budget.
    """

    warmup_iters: int = 10
    warmup_s: float = 0.2
    min_iters: int = 10
    max_iters: int = 10000
    target_rel_ci: float = 0.01
    budget_s: float = 2.0
    repeats: int = 1
    throughput_window_s: float = 0.5
    noise_cv: float = 0.10
    iterations: int | None = None  # a fixed count of timed iterations per process (None: adaptive)

    def __post_init__(self) -> None:
        for name in ("warmup_iters", "min_iters", "max_iters", "repeats"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "warmup_iters" else 1):
                raise ConfigError(f"timing {name} must be a non-negative integer, got {value!r}")
        bounds.check("warmup_iterations", self.warmup_iters, "timing warmup_iters")
        if self.iterations is not None:  # the fixed count of run --iterations N (hwprofile.bounds)
            bounds.check("fixed_iterations", self.iterations, "timing iterations")
        if self.min_iters > self.max_iters:
            raise ConfigError(f"timing min_iters ({self.min_iters}) exceeds max_iters ({self.max_iters})")
        for name in ("warmup_s", "target_rel_ci", "budget_s", "throughput_window_s", "noise_cv"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"timing {name} must be a finite number >= 0, got {value!r}")
        if self.budget_s <= 0:
            raise ConfigError("timing budget_s must be > 0")

    def to_dict(self) -> dict:
        """Plain data; ``iterations`` only when set (records of the adaptive mode read as before)."""
        d = dataclasses.asdict(self)
        if d["iterations"] is None:
            d.pop("iterations")
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TimingConfig":
        return cls(**data)


@dataclass(frozen=True)
class Measurement:
    """One runner on one workload: status, latency statistics, throughput, labelled memory, settings."""

    runner: str
    status: str
    reason: str | None
    latency: dict | None
    throughput: dict | None
    memory: dict
    settings: dict
    wall_s: float
    layers: dict | None = None  # per-layer breakdown when asked for (hwprofile.analysis._layers)
    energy: dict | None = None  # the throughput window's energy, or why there is none (hwprofile.trackers.energy)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Measurement":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def of(cls, value: "Measurement | Mapping[str, Any]") -> "Measurement":
        """``value`` as a Measurement: the one place a measuring function's plain dict (a plugin's, a test's
        stand-in) is typed, where it enters a sweep; a field it lacks is an error naming the field."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"a measuring function returned {type(value).__name__}: expected a Measurement")
        data = {"runner": "", "reason": None, "latency": None, "throughput": None, "memory": {}, "settings": {},
                "wall_s": 0.0, **value}
        if "status" not in data:
            raise TypeError("a measuring function returned a dict without 'status': expected a Measurement")
        return cls.from_dict(data)

    def with_settings(self, **settings: Any) -> "Measurement":
        """This measurement with ``settings`` added to its settings (where it ran: executor, node)."""
        return dataclasses.replace(self, settings={**(self.settings or {}), **settings})
