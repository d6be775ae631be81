"""Sweeps: every (model, strategy, scale, batch, runner) of a configuration measured on one device.

The profile is written after every record (atomically), so an interrupted sweep leaves a valid
file that ``resume=True`` completes without redoing finished records.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .complexity import complexity
from .errors import ConfigError, InputFileError
from .profile import Profile, Record, utc_now
from .scaling import scale
from .specs import ModelSpec, spec_to_dict
from .zoo import get_spec

DEFAULT_MODELS = ("EfficientNet-B0",)
DEFAULT_STRATEGIES = ("d", "w", "r", "dw", "dwr", "dWr")
DEFAULT_SCALES = (1.0, 4.0)
DEFAULT_BATCHES = {"cpu": (1, 8), "cuda": (1, 8, 32, 128)}
FINAL = ("ok", "oom", "crashed", "timeout", "unsupported", "failed")
ONNX_RUNNERS = ("ort:cpu", "ort:cuda", "ort:tensorrt", "trt")


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
    layers: int = 0  # > 0: also time each record's layers over this many profiled runs (Record.layers)

    def identity(self) -> dict:
        """The part of the configuration a resumed sweep must share."""
        d = dataclasses.asdict(self)
        for k in ("budget_s", "cache_dir", "timeout_s"):
            d.pop(k)
        if not d["options"]:
            d.pop("options")  # profiles written before runner options existed resume as before
        if not d["layers"]:
            d.pop("layers")
        return _jsonable(d)

    def runner_options(self, runner: str) -> dict:
        """The options ``runner`` gets: the shared ones it accepts, then its own."""
        from .runners import runner_class

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
        return self.model if not self.strategy else f"{self.model} {self.strategy} x{self.scale:g}"


# ----------------------------------------------------------------------------- planning

def check_runner_options(config: SweepConfig, runners: list[str]) -> None:
    """Every option must reach a runner of this sweep that accepts it."""
    from .runners import runner_class
    from .runners.base import check_options

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
    from .runners import check_runner_name
    from .scaling import check_scale, pycls_type

    for name, values in (("--models", config.models), ("--strategies", config.strategies),
                         ("--scales", config.scales)):
        if not values:
            raise ConfigError(f"empty sweep: {name} lists nothing")
    if config.runners is not None and not config.runners:
        raise ConfigError("empty sweep: --runners lists nothing")
    if config.batch_sizes is not None and (not config.batch_sizes or min(config.batch_sizes) < 1):
        raise ConfigError("--batch-sizes must be integers >= 1")
    if config.precision not in ("fp32", "fp16"):
        raise ConfigError(f"--precision {config.precision!r}: expected fp32 or fp16")
    if config.mode not in ("infer", "train"):
        raise ConfigError(f"--mode {config.mode!r}: expected infer or train")
    if config.budget_s is not None and not config.budget_s > 0:
        raise ConfigError("--budget must be a number of seconds > 0")
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
        else:
            get_spec(m)
    if config.mode == "train":
        wrong = [r for r in config.runners or () if not r.startswith("torch:")]
        if wrong:
            raise ConfigError(f"--mode train measures forward+backward and needs torch runners; "
                              f"{', '.join(wrong)} only infer")
        if any(_is_onnx(m) for m in config.models):
            raise ConfigError("--mode train cannot profile ONNX files (they hold no backward pass)")


def _onnx_batches(path: str, wanted: tuple[int, ...]) -> tuple[tuple[int, ...], str | None]:
    """Batch sizes an ONNX file accepts: a fixed batch dimension limits them."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    if dim.HasField("dim_value") and dim.dim_value > 0:
        fixed = dim.dim_value
        note = None if wanted == (fixed,) else f"{Path(path).name} has a fixed batch of {fixed}: measured at {fixed} only"
        return (fixed,), note
    return wanted, None


def plan(config: SweepConfig, device: str, runners: list[str]) -> tuple[list[Item], list[str]]:
    """The ordered items of a sweep and notes about what was limited and why."""
    batches = config.batch_sizes or DEFAULT_BATCHES["cuda" if device.startswith("cuda") else "cpu"]
    items, notes = [], []
    for model in config.models:
        if _is_onnx(model):
            onnx_runners = [r for r in runners if r in ONNX_RUNNERS]
            if len(onnx_runners) < len(runners):
                notes.append(f"{Path(model).name}: ONNX files run on {', '.join(onnx_runners) or 'no selected runner'} "
                             "only (torch runners need a zoo model)")
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
    return items, notes


# --------------------------------------------------------------------------- execution

def _record(item: Item, device_id: str, config: SweepConfig, counts: dict, status: str,
            reason: str | None, m: dict | None = None) -> Record:
    m = m or {}
    return Record(device_id=device_id, model=item.model, strategy=item.strategy, scale=item.scale,
                  batch=item.batch, runner=item.runner, precision=config.precision, mode=config.mode,
                  resolution=counts.get("resolution", 0), flops=counts.get("flops"), params=counts.get("params"),
                  acts=counts.get("acts"), status=status, reason=reason, latency=m.get("latency"),
                  throughput=m.get("throughput"), memory=m.get("memory") or {}, settings=m.get("settings") or {},
                  source="onnx" if item.onnx_path else "zoo", measured_utc=utc_now(),
                  layers=_compact_layers(m.get("layers")))


def _compact_layers(raw: dict | None) -> dict | None:
    from .layers import compact

    return compact(raw) if raw else None


def _counts(item: Item) -> dict:
    if item.spec is not None:
        cx = complexity(item.spec)
        return {"flops": cx.flops, "params": cx.params, "acts": cx.acts, "resolution": cx.resolution}
    from .onnx_complexity import count_onnx

    oc = count_onnx(item.onnx_path, batch=1)
    return {"flops": oc.flops, "params": oc.params, "acts": oc.acts, "resolution": oc.resolution}


class _Artifacts:
    """Exports each model once per sweep (and reuses the exporter's on-disk cache)."""

    def __init__(self, config: SweepConfig):
        self.config = config
        self._onnx: dict[str, str | Exception] = {}

    def onnx(self, item: Item) -> str:
        if item.onnx_path:
            return item.onnx_path
        key = item.label
        if key not in self._onnx:
            try:
                from exporters import to_onnx

                art = to_onnx(item.spec, batch="dynamic", fp16=self.config.precision == "fp16",
                              cache_dir=self.config.cache_dir)
                self._onnx[key] = str(art.path)
            except Exception as exc:  # recorded as a failed record, the sweep goes on
                self._onnx[key] = exc
        value = self._onnx[key]
        if isinstance(value, Exception):
            raise value
        return value


def _workload(item: Item, config: SweepConfig, artifacts: _Artifacts, resolution: int):
    from .measure import Workload

    options = config.runner_options(item.runner)
    if item.runner.startswith("torch:"):
        return Workload(kind="spec", spec=spec_to_dict(item.spec), path=None, batch=item.batch,
                        resolution=resolution, precision=config.precision, mode=config.mode, options=options)
    return Workload(kind="onnx", spec=None, path=artifacts.onnx(item), batch=item.batch,
                    resolution=resolution, precision=config.precision, mode=config.mode, options=options)


MeasureFn = Callable[..., object]


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(_sig, _frame):
        raise KeyboardInterrupt
    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def check_writable(path: Path) -> None:
    """Fail before measuring if ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".hwprofile-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot write the profile to {str(path)!r}: {exc.strerror or exc}") from None


def default_out(device_id: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{device_id}-{stamp}.json"


def open_profile(config: SweepConfig, out: Path, resume: bool, device_id: str, fp: dict) -> Profile:
    """A fresh profile at a new path, or the resumed one after checking it matches."""
    if not resume:
        if out.exists():
            raise ConfigError(f"{str(out)!r} already exists; choose another --out, or --resume it")
        check_writable(out)
        return Profile(devices={device_id: fp}, sweeps=[{"device_id": device_id, "config": config.identity(),
                                                          "started_utc": utc_now()}])
    profile = Profile.load(out)
    if device_id not in profile.devices:
        raise ConfigError(f"cannot resume {str(out)!r}: it was measured on {', '.join(profile.devices)}, "
                          f"this is {device_id}")
    mine = [s for s in profile.sweeps if s.get("device_id") == device_id]
    if not mine or mine[-1].get("config") != config.identity():
        raise ConfigError(f"cannot resume {str(out)!r}: its sweep configuration differs from the options given")
    check_writable(out)
    return profile


def resolve_target(config: SweepConfig) -> tuple[str, list[str], dict]:
    """This machine's device for ``config``, its runners (checked) and its fingerprint."""
    from .measure import fingerprint
    from .runners import availability, available_runners, resolve_device

    device = resolve_device(config.device)
    runners = list(config.runners) if config.runners else available_runners(device)
    if config.mode == "train":
        runners = [r for r in runners if r.startswith("torch:")]
    for r in runners:
        ok, why = availability(r, device)
        if not ok:
            from .errors import RunnerUnavailable

            raise RunnerUnavailable(f"{why} (available on {device}: {', '.join(available_runners(device)) or 'none'})")
    return device, runners, fingerprint(device)


def run_sweep(config: SweepConfig, out: str | os.PathLike | None = None, *, resume: bool = False,
              quiet: bool = False, measure_fn: MeasureFn | None = None,
              executor=None) -> tuple[Profile, Path, list[str]]:
    """Measure every item of ``config``; returns (profile, its path, notes).

    ``executor`` (hwprofile.executors) says where measurements run; the default is this machine.
    """
    from .executors.local import LocalExecutor
    from .measure import TimingConfig

    validate(config)
    try:
        timing = TimingConfig(**config.timing)
    except TypeError as exc:
        raise ConfigError(f"unknown timing option: {exc}") from None
    if executor is not None and measure_fn is not None:
        raise ConfigError("give run_sweep a measure_fn or an executor, not both")
    executor = executor or LocalExecutor(measure_fn)
    target = executor.target(config)
    device, runners, fp, dev_id = target.device, target.runners, target.fingerprint, target.device_id
    if not runners:
        raise ConfigError(f"empty sweep: no runner is available on {device}")
    check_runner_options(config, runners)
    items, notes = plan(config, device, runners)
    if not items:
        raise ConfigError("empty sweep: no configuration to measure (" + "; ".join(notes or ["check the options"]) + ")")
    path = Path(out) if out else default_out(dev_id)
    profile = open_profile(config, path, resume, dev_id, fp)
    profile.save(path)
    done = {k for k, r in profile.by_key().items() if r.status in FINAL}
    artifacts = _Artifacts(config)
    started = time.monotonic()
    with _sigterm_as_interrupt(), _progress(len(items), quiet) as bar:
        for item in items:
            bar.set_postfix_str(f"{item.label} b{item.batch} {item.runner}", refresh=False)
            key = (dev_id, item.model, item.strategy, item.scale, item.batch, item.runner, config.precision, config.mode)
            if key not in done:
                rec = _measure_item(item, config, dev_id, device, artifacts, timing, executor.measure, started)
                profile.upsert(rec)
                profile.save(path)
                if executor.stop_reason():
                    from .errors import MeasurementError

                    raise MeasurementError(f"{executor.stop_reason()}; the profile so far is saved in {path}: "
                                           f"continue with --resume {path}")
            bar.update(1)
    return profile, path, notes


def _measure_item(item: Item, config: SweepConfig, dev_id: str, device: str, artifacts: _Artifacts,
                  timing, measure_fn: MeasureFn, started: float) -> Record:
    try:
        counts = _counts(item)
    except Exception as exc:
        return _record(item, dev_id, config, {}, "failed", f"counting failed: {exc}")
    elapsed = time.monotonic() - started
    if config.budget_s is not None and elapsed >= config.budget_s:
        return _record(item, dev_id, config, counts, "skipped", f"sweep budget of {config.budget_s:g}s spent")
    try:
        workload = _workload(item, config, artifacts, counts["resolution"])
    except Exception as exc:
        return _record(item, dev_id, config, counts, "failed", f"export failed: {_one_line(exc)}")
    timeout = config.timeout_s
    if config.budget_s is not None:
        timeout = max(5.0, min(timeout, config.budget_s - elapsed + 5.0))
    extra = {"layers": {"iterations": config.layers, "onnx_path": None, "peaks": {"seconds": 0.2}}} \
        if config.layers else {}
    m = measure_fn(item.runner, workload, timing, timeout_s=timeout, device=device, **extra)
    md = m.to_dict() if hasattr(m, "to_dict") else dict(m)
    return _record(item, dev_id, config, counts, md["status"], md.get("reason"), md)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:300]


@contextmanager
def _progress(total: int, quiet: bool):
    from tqdm import tqdm

    bar = tqdm(total=total, disable=quiet, unit="cfg", dynamic_ncols=True, leave=True)
    try:
        yield bar
    finally:
        bar.close()
