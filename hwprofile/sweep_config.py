"""What a sweep measures: its configuration, checked before anything runs, and its ordered items."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, InputFileError
from .onnx_graph import load_model
from .quality import DEFAULT_BACKOFF_S, DEFAULT_RETRIES
from .runners import check_runner_name, runner_class, runner_names
from .runners.base import check_options
from .scaling import MAX_BATCH, check_scale, pycls_type, scale
from .specs import ModelSpec, scaled_label
from .zoo import get_spec

# The default sweep, designed for the question (docs/measurement.md, "The default sweep"): at each s, w and r
# have about the same flops and acts differing by sqrt(s), so they carry the acts elasticity, whose standard
# error falls like sigma / (0.5 ln s); dWr is the paper's strategy. w, r and dWr export quickly at any s (they
# add few layers). By simulation (hwprofile.power; the table in docs/measurement.md is printed by
# scripts/verdict_power.py) this design gets the verdict right at sigma = 0.10 in 98-100% of rows for pure
# truths and 90% for flops^0.5 acts^0.5, against 68% / 32% for the previous default (d, w, r, dw, dwr, dWr at
# s in {1, 4}).
DEFAULT_MODELS = ("EfficientNet-B0",)
DEFAULT_STRATEGIES = ("w", "r", "dWr")
DEFAULT_SCALES = (1.0, 4.0, 16.0)
DEFAULT_BATCHES = {"cpu": (1, 8), "cuda": (1, 8, 32, 128)}
#: measurements run in an order shuffled with this seed, so drift does not line up with scale or strategy
ORDER_SEED = 0
ORDERS = ("shuffled", "planned")
FINAL = ("ok", "oom", "crashed", "timeout", "unsupported", "failed")


@dataclass(frozen=True)
class SweepConfig:
    """What to measure. Lists are tuples; ``None`` means the documented default."""

    device: str = "auto"
    runners: tuple[str, ...] | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    scales: tuple[float, ...] = DEFAULT_SCALES
    batch_sizes: tuple[int, ...] | None = None
    precision: str = "fp32"
    mode: str = "infer"
    budget_s: float | None = None
    timing: dict = field(default_factory=dict)  # TimingConfig overrides
    options: dict = field(default_factory=dict)  # runner options: {"*": {...} for every runner that takes
    #                                              them, "<runner>": {...}}, e.g. {"*": {"threads": 1}}
    timeout_s: float = 300.0
    cache_dir: str | None = None
    retries: int = DEFAULT_RETRIES  # re-measurements of a disturbed record (hwprofile.quality)
    retry_backoff_s: float = DEFAULT_BACKOFF_S  # first back-off before re-measuring, doubled each time
    layers: int = 0  # > 0: also time each record's layers over this many profiled runs (Record.layers)
    memory_limit_mb: float | None = None  # host-memory cap of each measuring child (None: measure()'s default)
    order: str = "shuffled"  # shuffled (seeded with ORDER_SEED) | planned: the order items are measured in

    def identity(self) -> dict:
        """The part of the configuration a resumed sweep must share."""
        d = dataclasses.asdict(self)
        for k in ("budget_s", "cache_dir", "timeout_s", "memory_limit_mb", "retries", "retry_backoff_s", "order"):
            d.pop(k)
        if not d["options"]:
            d.pop("options")  # profiles written before runner options existed resume as before
        if not d["layers"]:
            d.pop("layers")
        return _jsonable(d)

    def runner_options(self, runner: str) -> dict:
        """The options ``runner`` gets: the shared ones it accepts, then its own."""
        accepted = runner_class(runner).option_names
        return {**{k: v for k, v in self.options.get("*", {}).items() if k in accepted},
                **self.options.get(runner, {})}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Item:
    """One configuration to measure."""

    model: str
    strategy: str | None
    scale: float
    batch: int
    runner: str
    spec: ModelSpec | None = None
    onnx_path: str | None = None

    @property
    def label(self) -> str:
        return scaled_label(self.model, self.strategy, self.scale)


# ----------------------------------------------------------------------------- planning

def check_runner_options(config: SweepConfig, runners: list[str]) -> None:
    """Every option must reach a runner of this sweep that accepts it."""
    if not isinstance(config.options, dict) or not all(isinstance(v, dict) for v in config.options.values()):
        raise ConfigError("runner options must map '*' or a runner name to {option: value}")
    for name in config.options:
        if name != "*" and name not in runners:
            raise ConfigError(f"options for {name}, which is not in this sweep (runners: {', '.join(runners)})")
    for runner in runners:  # names and values, as each runner will get them
        check_options(runner_class(runner), config.runner_options(runner))
    for key in config.options.get("*", {}):
        if not any(key in runner_class(r).option_names for r in runners):
            takes = {r: ", ".join(runner_class(r).option_names) for r in runners}
            raise ConfigError(f"no runner of this sweep takes the option {key!r} ("
                              + "; ".join(f"{r}: {o}" for r, o in takes.items()) + ")")


def _is_onnx(model: str) -> bool:
    return model.lower().endswith(".onnx")


def validate(config: SweepConfig) -> None:
    """Reject empty or contradictory configurations before anything is measured."""
    for name, values in (("--models", config.models), ("--strategies", config.strategies),
                         ("--scales", config.scales)):
        if not values:
            raise ConfigError(f"empty sweep: {name} lists nothing")
    if config.runners is not None and not config.runners:
        raise ConfigError("empty sweep: --runners lists nothing")
    if config.batch_sizes is not None and (not config.batch_sizes or not all(
            isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= MAX_BATCH for b in config.batch_sizes)):
        raise ConfigError(f"--batch-sizes must be integers from 1 to {MAX_BATCH}")
    if config.order not in ORDERS:
        raise ConfigError(f"--order {config.order!r}: expected {' or '.join(ORDERS)}")
    if config.precision not in ("fp32", "fp16"):
        raise ConfigError(f"--precision {config.precision!r}: expected fp32 or fp16")
    if config.mode not in ("infer", "train"):
        raise ConfigError(f"--mode {config.mode!r}: expected infer or train")
    if config.budget_s is not None and not config.budget_s > 0:
        raise ConfigError("--budget must be a number of seconds > 0")
    if config.memory_limit_mb is not None and not config.memory_limit_mb >= 0:
        raise ConfigError("--memory-limit must be a number of MiB > 0 (or 0 for none)")
    if not isinstance(config.retries, int) or config.retries < 0:
        raise ConfigError(f"--retries {config.retries!r}: expected an integer >= 0")
    if not config.retry_backoff_s >= 0:
        raise ConfigError(f"--retry-backoff {config.retry_backoff_s!r}: expected seconds >= 0")
    for r in config.runners or ():
        check_runner_name(r)
    for s in config.strategies:
        pycls_type(s)
    for s in config.scales:
        check_scale(s)
    for m in config.models:
        if _is_onnx(m):
            if not Path(m).is_file():
                raise InputFileError(f"ONNX model {m!r} does not exist")
            load_model(m)  # a truncated or foreign file is one line here, before anything is measured
        else:
            get_spec(m)
    if config.mode != "infer":
        wrong = [r for r in config.runners or () if config.mode not in runner_class(r).modes]
        if wrong:
            able = [r for r in runner_names() if config.mode in runner_class(r).modes]
            raise ConfigError(f"--mode {config.mode} (forward + backward) needs runners that support it "
                              f"({', '.join(able)}); {', '.join(wrong)} only "
                              f"{'/'.join(runner_class(wrong[0]).modes)}")
        if any(_is_onnx(m) for m in config.models):
            raise ConfigError("--mode train cannot profile ONNX files (they hold no backward pass)")


def _onnx_batches(path: str, wanted: tuple[int, ...]) -> tuple[tuple[int, ...], str | None]:
    """Batch sizes an ONNX file accepts: a fixed batch dimension limits them."""
    model = load_model(path)[0]
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else ()
    if not dims:
        raise InputFileError(f"{path}: the graph's first input has no shape (expected N x 3 x H x W)")
    dim = dims[0]
    if dim.HasField("dim_value") and dim.dim_value > 0:
        fixed = dim.dim_value
        note = None if wanted == (fixed,) else f"{Path(path).name} has a fixed batch of {fixed}: measured at {fixed} only"
        return (fixed,), note
    return wanted, None


def plan(config: SweepConfig, device: str, runners: list[str]) -> tuple[list[Item], list[str]]:
    """The ordered items of a sweep and notes about what was limited and why: shuffled with
    :data:`ORDER_SEED` unless ``config.order`` is ``planned`` (model by model, batch, runner)."""
    batches = config.batch_sizes or DEFAULT_BATCHES["cuda" if device.startswith("cuda") else "cpu"]
    items, notes = [], []
    for model in config.models:
        if _is_onnx(model):
            onnx_runners = [r for r in runners if runner_class(r).takes_onnx_files()]
            if len(onnx_runners) < len(runners) and (config.runners or not onnx_runners):  # asked for, or none
                notes.append(f"{Path(model).name}: ONNX files run on {', '.join(onnx_runners) or 'no selected runner'} "
                             "only (runners of torch modules need a zoo model)")
            bs, note = _onnx_batches(model, tuple(batches))
            notes += [note] if note else []
            items += [Item(Path(model).name, None, 1.0, b, r, onnx_path=str(Path(model).resolve()))
                      for b in bs for r in onnx_runners]
            continue
        base = get_spec(model)
        variants: list[tuple[str | None, float, ModelSpec]] = []
        for s in config.scales:
            if float(s) == 1.0:
                variants.append((None, 1.0, base))
            else:
                variants += [(st, float(s), scale(base, st, s)) for st in config.strategies]
        seen = set()
        for st, s, spec in variants:
            if (st, s) in seen:
                continue
            seen.add((st, s))
            items += [Item(base.name, st, s, b, r, spec=spec) for b in batches for r in runners]
    if config.order == "shuffled":
        random.Random(ORDER_SEED).shuffle(items)
    return items, notes
