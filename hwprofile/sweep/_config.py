"""What a sweep measures: its configuration, checked before anything runs, and its ordered items."""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

from hwprofile import bounds
from hwprofile.errors import ConfigError, InputFileError
from hwprofile.graph import load_model
from hwprofile.profile import DEFAULT_BACKOFF_S, DEFAULT_RETRIES, TimingConfig
from hwprofile.runners import check_options, check_runner_name, runner_class, runner_names
from hwprofile.vocabulary import MEASURED_STATUSES, MODES, PRECISIONS, Mode, Precision
from hwprofile.zoo import ModelSpec, check_scale, get_spec, pycls_type, scale, scaled_label

# The default sweep, designed for the question (docs/measurement.md, "The default sweep"): at each s, w and r
# have about the same flops and acts differing by sqrt(s), so they carry the acts elasticity, whose standard
# error falls like sigma / (0.5 ln s); dWr is the paper's strategy. w, r and dWr export quickly at any s (they
# add few layers). By simulation (hwprofile.analysis._power; the table in docs/measurement.md is printed by
# scripts/verdict_power.py) this design gets the verdict right at sigma = 0.10 in 98-100% of rows for pure
# truths and 90% for flops^0.5 acts^0.5, against 68% / 32% for the previous default (d, w, r, dw, dwr, dWr at
# s in {1, 4}).
DEFAULT_MODELS = ("EfficientNet-B0",)
DEFAULT_STRATEGIES = ("w", "r", "dWr")
DEFAULT_SCALES = (1.0, 4.0, 16.0)
DEFAULT_BATCHES = {"cpu": (1, 8), "cuda": (1, 8, 32, 128)}
#: measurements run row by row (runner, batch), in an order shuffled with this seed, so drift does not line up
#: with scale or strategy
ORDER_SEED = 0
ORDERS = ("shuffled", "planned")
#: statuses a sweep does not measure again (hwprofile.vocabulary.MEASURED_STATUSES)
FINAL = MEASURED_STATUSES


@with_config(ConfigDict(strict=True, revalidate_instances="always"))
@dataclass(frozen=True)
class SweepConfig:
    """What to measure. Lists are tuples; ``None`` means the documented default."""

    device: str = "auto"
    runners: tuple[str, ...] | None = None
    models: tuple[str, ...] = DEFAULT_MODELS
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    scales: tuple[float, ...] = DEFAULT_SCALES
    batch_sizes: tuple[int, ...] | None = None
    precision: Precision = "fp32"
    mode: Mode = "infer"
    budget_s: float | None = None
    timing: dict = field(default_factory=dict)  # TimingConfig overrides
    options: dict = field(default_factory=dict)  # runner options: {"*": {...} for every runner that takes
    #                                              them, "<runner>": {...}}, e.g. {"*": {"threads": 1}}
    timeout_s: float = 300.0
    cache_dir: str | None = None
    retries: int = DEFAULT_RETRIES  # re-measurements of a disturbed record (hwprofile.profile._quality)
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
class Configuration:
    """One configuration of a sweep: a model (scaled by a strategy) at a batch size on a runner."""

    model: str
    strategy: str | None
    scale: float
    batch: int
    runner: str

    @property
    def label(self) -> str:
        return scaled_label(self.model, self.strategy, self.scale)


@dataclass(frozen=True)
class Item(Configuration):
    """One configuration to measure, with what builds it: a zoo spec, or the user's ONNX file."""

    spec: ModelSpec | None = None
    onnx_path: str | None = None


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


#: How :func:`validate` names each option in its messages: the CLI's flags ...
FLAGS = {"device": "--device", "runners": "--runners", "models": "--models", "strategies": "--strategies",
         "scales": "--scales", "batch_sizes": "--batch-sizes", "precision": "--precision", "mode": "--mode",
         "budget_s": "--budget", "timing": "timing", "timing.repeats": "--repeats",
         "timing.budget_s": "--seconds-per-config", "options": "--option", "threads": "--threads",
         "runner_threads": "--option {runner}.threads",
         "timeout_s": "timeout_s", "cache_dir": "--cache-dir", "retries": "--retries",
         "retry_backoff_s": "--retry-backoff", "layers": "--layers", "memory_limit_mb": "--memory-limit",
         "order": "--order", "timing.warmup_iters": "--warmup", "timing.iterations": "--iterations"}
#: ... or the Python API's parameters (``hwprofile.run(batch_sizes=...)``, ``timing={"repeats": ...}``)
PARAMS = {**{k: k for k in FLAGS if "." not in k}, "timing.repeats": "timing['repeats']",
          "timing.budget_s": "timing['budget_s']", "timing.warmup_iters": "timing['warmup_iters']",
          "timing.iterations": "timing['iterations']", "threads": "options['*']['threads']",
          "runner_threads": "options[{runner!r}]['threads']"}
#: TimingConfig fields with a bound of their own in hwprofile.bounds
_TIMING_BOUNDS = {"repeats": "repeats", "budget_s": "seconds_per_config", "min_iters": "iterations",
                  "max_iters": "iterations", "warmup_iters": "warmup_iterations", "iterations": "fixed_iterations"}


@functools.cache
def _types() -> TypeAdapter:
    return TypeAdapter(SweepConfig)  # built on first use: importing hwprofile stays cheap


def _type_error(exc: ValidationError, names: Mapping[str, str]) -> ConfigError:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    where = names.get(loc[0], loc[0]) if loc else "argument"
    inner = "".join(f"[{p}]" for p in loc[1:])
    expect = {"tuple_type": "a tuple (or list) of values", "string_type": "a string", "float_type": "a number",
              "int_type": "an integer", "dict_type": "a dict", "bool_type": "True or False"}.get(
        first["type"], first["msg"][0].lower() + first["msg"][1:])
    return ConfigError(f"{where}{inner} {bounds.shown(first.get('input'))}: expected {expect}")


def check_types(config: SweepConfig, names: Mapping[str, str] = FLAGS) -> None:
    """Every field of ``config`` of its declared type (strictly: no '10' for 10.0), else a one-line ConfigError."""
    try:
        _types().validate_python(config)
    except ValidationError as exc:
        raise _type_error(exc, names) from None


def validate(config: SweepConfig, *, names: Mapping[str, str] = FLAGS, local: bool = True) -> None:
    """Reject empty, contradictory or out-of-bounds configurations before anything is measured.

    Messages name the CLI's flags, or with ``names=PARAMS`` the Python API's parameters. ``local``: the
    sweep measures on this machine, so ``threads`` is bounded by its cores (a Ray task checks its own).
    """
    check_types(config, names)
    for key, values in (("models", config.models), ("strategies", config.strategies), ("scales", config.scales)):
        if not values:
            raise ConfigError(f"empty sweep: {names[key]} lists nothing")
    if config.runners is not None and not config.runners:
        raise ConfigError(f"empty sweep: {names['runners']} lists nothing")
    if config.batch_sizes is not None:
        if not config.batch_sizes:
            raise ConfigError(f"empty sweep: {names['batch_sizes']} lists nothing")
        for b in config.batch_sizes:
            bounds.check("batch", b, names["batch_sizes"])
    if config.order not in ORDERS:
        raise ConfigError(f"{names['order']} {config.order!r}: expected {' or '.join(ORDERS)}")
    if config.precision not in PRECISIONS:
        raise ConfigError(f"{names['precision']} {config.precision!r}: expected {' or '.join(PRECISIONS)}")
    if config.mode not in MODES:
        raise ConfigError(f"{names['mode']} {config.mode!r}: expected {' or '.join(MODES)}")
    if config.budget_s is not None:
        bounds.check("budget", config.budget_s, names["budget_s"])
    if config.memory_limit_mb is not None and not (math.isfinite(config.memory_limit_mb)
                                                   and config.memory_limit_mb >= 0):
        raise ConfigError(f"{names['memory_limit_mb']} {config.memory_limit_mb!r}: expected a number of MiB > 0 "
                          "(or 0 for none)")
    if not (math.isfinite(config.timeout_s) and config.timeout_s > 0):
        raise ConfigError(f"{names['timeout_s']} {config.timeout_s!r}: expected seconds > 0")
    bounds.check("retries", config.retries, names["retries"])
    bounds.check("retry_backoff", config.retry_backoff_s, names["retry_backoff_s"])
    if config.layers:
        bounds.check("layer_runs", config.layers, names["layers"])
    timing_config(config, names)
    _check_threads(config, names, local)
    for r in config.runners or ():
        check_runner_name(r)
    for s in config.strategies:
        pycls_type(s)
    for value in config.scales:
        check_scale(value)
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
            raise ConfigError(f"{names['mode']} {config.mode} (forward + backward) needs runners that support it "
                              f"({', '.join(able)}); {', '.join(wrong)} only "
                              f"{'/'.join(runner_class(wrong[0]).modes)}")
        if any(_is_onnx(m) for m in config.models):
            raise ConfigError(f"{names['mode']} train cannot profile ONNX files (they hold no backward pass)")


def timing_config(config: SweepConfig, names: Mapping[str, str] = FLAGS) -> TimingConfig:
    """The sweep's TimingConfig, its overrides checked against hwprofile.bounds."""
    known = {f.name for f in dataclasses.fields(TimingConfig)}
    for key, value in config.timing.items():
        label = names.get(f"timing.{key}") or (f"{names['timing']}[{key!r}]")
        if key not in known:
            raise ConfigError(f"{label}: unknown timing option; expected one of {', '.join(sorted(known))}")
        if key in _TIMING_BOUNDS:
            bounds.check(_TIMING_BOUNDS[key], value, label)
    return TimingConfig(**config.timing)


def _check_threads(config: SweepConfig, names: Mapping[str, str], local: bool) -> None:
    for runner, opts in config.options.items():
        if not isinstance(opts, dict):
            raise ConfigError(f"{names['options']}: runner options must map '*' or a runner name to "
                              f"{{option: value}}; {runner!r} maps to {bounds.shown(opts)}")
        if "threads" in opts:
            label = names["threads"] if runner == "*" else names["runner_threads"].format(runner=runner)
            value = opts["threads"]
            if local:
                bounds.check("threads", value, label)
            else:  # measured elsewhere: that machine bounds it by its cores; here only the type and sign
                _positive_int(value, label)


def _positive_int(value, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{label} {value!r}: expected an integer >= 1")
    return value


def _onnx_batches(path: str, wanted: tuple[int, ...]) -> tuple[tuple[int, ...], str | None]:
    """Batch sizes an ONNX file accepts: a fixed batch dimension limits them."""
    model = load_model(path)[0]
    dims = model.graph.input[0].type.tensor_type.shape.dim if model.graph.input else ()
    if not dims:
        raise InputFileError(f"{path}: the graph's first input has no shape (expected N x 3 x H x W)")
    dim = dims[0]
    if dim.HasField("dim_value") and dim.dim_value > 0:
        fixed = dim.dim_value
        note = (None if wanted == (fixed,)
                else f"{Path(path).name} has a fixed batch of {fixed}: measured at {fixed} only")
        return (fixed,), note
    return wanted, None


def plan(config: SweepConfig, device: str, runners: list[str]) -> tuple[list[Item], list[str]]:
    """The ordered items of a sweep and notes about what was limited and why: in blocks by row, shuffled with
    :data:`ORDER_SEED` (:func:`blocked_shuffle`), unless ``config.order`` is ``planned`` (model by model, batch,
    runner)."""
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
    return (blocked_shuffle(items) if config.order == "shuffled" else items), notes


def blocked_shuffle(items: list[Item]) -> list[Item]:
    """Each row of the fits (runner, batch) measured as one block, the blocks and the items inside each in an
    order shuffled with :data:`ORDER_SEED`: drift during the sweep does not line up with scale or strategy, and a
    row's records lie close together in time, so drift over the whole sweep (on a shared VM, 0.85-1.5x between
    two quiet default runs) does not enter a row's fit (a randomised block design; docs/measurement.md)."""
    rng = random.Random(ORDER_SEED)
    rows: dict[tuple[str, int], list[Item]] = {}
    for it in items:
        rows.setdefault((it.runner, it.batch), []).append(it)
    keys = list(rows)
    rng.shuffle(keys)
    out: list[Item] = []
    for key in keys:
        block = rows[key]
        rng.shuffle(block)
        out += block
    return out
