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
from .errors import ConfigError, InputFileError, SchemaError
from .profile import Profile, Record, utc_now
from .quality import DEFAULT_BACKOFF_S, DEFAULT_RETRIES
from .scaling import scale
from .specs import ModelSpec
from .zoo import get_spec

DEFAULT_MODELS = ("EfficientNet-B0",)
DEFAULT_STRATEGIES = ("d", "w", "r", "dw", "dwr", "dWr")
DEFAULT_SCALES = (1.0, 4.0)
DEFAULT_BATCHES = {"cpu": (1, 8), "cuda": (1, 8, 32, 128)}
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

    def identity(self) -> dict:
        """The part of the configuration a resumed sweep must share."""
        d = dataclasses.asdict(self)
        for k in ("budget_s", "cache_dir", "timeout_s", "memory_limit_mb", "retries", "retry_backoff_s"):
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
        from .datatypes import scaled_label

        return scaled_label(self.model, self.strategy, self.scale)


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


#: the largest batch size a sweep measures (docs/limits.md)


def validate(config: SweepConfig) -> None:
    """Reject empty or contradictory configurations before anything is measured."""
    from .runners import check_runner_name, runner_names
    from .scaling import check_scale, pycls_type

    for name, values in (("--models", config.models), ("--strategies", config.strategies),
                         ("--scales", config.scales)):
        if not values:
            raise ConfigError(f"empty sweep: {name} lists nothing")
    if config.runners is not None and not config.runners:
        raise ConfigError("empty sweep: --runners lists nothing")
    if config.batch_sizes is not None and (not config.batch_sizes or not all(
            isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= MAX_BATCH for b in config.batch_sizes)):
        raise ConfigError(f"--batch-sizes must be integers from 1 to {MAX_BATCH}")
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
            from .onnx_complexity import load_model

            load_model(m)  # a truncated or foreign file is one line here, before anything is measured
        else:
            get_spec(m)
    if config.mode != "infer":
        from .runners import runner_class

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
    from .onnx_complexity import load_model

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
    """The ordered items of a sweep and notes about what was limited and why."""
    from .runners import runner_class

    batches = config.batch_sizes or DEFAULT_BATCHES["cuda" if device.startswith("cuda") else "cpu"]
    items, notes = [], []
    for model in config.models:
        if _is_onnx(model):
            onnx_runners = [r for r in runners if runner_class(r).takes_onnx_files()]
            if len(onnx_runners) < len(runners):
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
    return items, notes


# --------------------------------------------------------------------------- execution

def _record(item: Item, device_id: str, config: SweepConfig, counts: dict, status: str,
            reason: str | None, m: dict | None = None, prepared: dict | None = None) -> Record:
    m = m or {}
    fields = dict(device_id=device_id, model=item.model, strategy=item.strategy, scale=item.scale,
                  batch=item.batch, runner=item.runner, precision=config.precision, mode=config.mode,
                  resolution=counts.get("resolution", 0), flops=counts.get("flops"), params=counts.get("params"),
                  acts=counts.get("acts"), status=status, reason=reason, latency=m.get("latency"),
                  throughput=m.get("throughput"), memory=m.get("memory") or {}, settings=m.get("settings") or {},
                  source="onnx" if item.onnx_path else "zoo", measured_utc=utc_now(),
                  layers=_compact_layers(m.get("layers")), prepare=prepared)
    try:
        return Record.from_dict(fields, where="measured record")
    except SchemaError as exc:  # a runner reported something no profile may hold (NaN, a zero median...)
        if fields["status"] != "ok":
            raise
        bad = {**fields, "status": "failed", "latency": None, "throughput": None, "memory": {},
               "reason": f"the measurement is out of range ({exc})"}
        return Record.from_dict(bad, where="measured record")


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


def prepare_item(item: Item, config: SweepConfig, device: str, artifacts, resolution: int):
    """(Workload, prepare record) for ``item``: its runner makes the input it declares (a torch module,
    a verified ONNX graph or a TensorRT engine; hwprofile.runners.prepare). One step per item, so an
    executor can prepare an item wherever it will measure it."""
    from .runners import runner_class

    return runner_class(item.runner).prepare(item, config, device, artifacts, resolution)


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
    from .atomic import safe_name

    return Path("runs") / f"{safe_name(device_id)}-{stamp}.json"


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
    from .runners import availability, available_runners, resolve_device, runner_class

    device = resolve_device(config.device)
    runners = list(config.runners) if config.runners else available_runners(device)
    runners = [r for r in runners if config.mode in runner_class(r).modes]
    for r in runners:
        ok, why = availability(r, device)
        if not ok:
            from .errors import RunnerUnavailable

            raise RunnerUnavailable(f"{why} (available on {device}: {', '.join(available_runners(device)) or 'none'})")
    return device, runners, fingerprint(device)


def run_sweep(config: SweepConfig, out: str | os.PathLike | None = None, *, resume: bool = False,
              quiet: bool = False, measure_fn: MeasureFn | None = None, remeasure: str | None = None,
              peaks: bool | None = None, executor=None) -> tuple[Profile, Path, list[str]]:
    """Measure every item of ``config``; returns (profile, its path, notes).

    ``executor`` (hwprofile.executors) says where measurements run; the default is this machine.
    ``remeasure`` ("disturbed" | "unclean", with ``resume``) measures such records of the file again.
    ``peaks``: measure the device peaks once (default: yes when measuring on this machine with the real
    ``measure``, unless the profile already holds them).
    """
    from . import quality
    from .executors.local import LocalExecutor
    from .measure import TimingConfig
    from .runners import availability, runner_class
    from .runners.prepare import Artifacts

    validate(config)
    if remeasure is not None and (remeasure not in quality.REMEASURE or not resume):
        raise ConfigError(f"--remeasure {remeasure!r}: expected one of {', '.join(quality.REMEASURE)}, "
                          "with --resume FILE")
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
        from .errors import RunnerUnavailable
        from .runners import RUNNER_NAMES

        why = [availability(r, device)[1] for r in RUNNER_NAMES if runner_class(r).device_type == device.split(":")[0]]
        raise RunnerUnavailable(f"no runner is available on {device} (" + "; ".join(why) + ")")
    check_runner_options(config, runners)
    items, notes = plan(config, device, runners)
    if not items:
        raise ConfigError("empty sweep: no configuration to measure (" + "; ".join(notes or ["check the options"]) + ")")
    path = Path(out) if out else default_out(dev_id)
    profile = open_profile(config, path, resume, dev_id, fp)
    want_peaks = (measure_fn is None and isinstance(executor, LocalExecutor)) if peaks is None else peaks
    if want_peaks:
        _store_peaks(profile, dev_id, device)
    profile.save(path)
    measured_here = isinstance(executor, LocalExecutor)
    done = {k for k, r in profile.by_key().items()
            if r.status in FINAL and not quality.needs_remeasure(r, remeasure)}
    artifacts = Artifacts.for_items(items, config.cache_dir)
    started = time.monotonic()
    with _sigterm_as_interrupt(), _progress(len(items), quiet) as bar:
        for item in items:
            bar.set_postfix_str(f"{item.label} b{item.batch} {item.runner}", refresh=False)
            key = (dev_id, item.model, item.strategy, item.scale, item.batch, item.runner, config.precision, config.mode)
            if key not in done:
                def once() -> Record:
                    return _measure_item(item, config, dev_id, device, artifacts, timing, executor.measure, started)
                if measured_here:  # the system check and the back-off read this machine
                    rec = quality.measure_with_retries(_first_prepare(once), device, retries=config.retries,
                                                       backoff_s=config.retry_backoff_s)
                else:  # judged on the readings taken where it ran
                    rec = quality.with_quality(once())
                profile.upsert(rec)
                profile.save(path)
                if executor.stop_reason():
                    from .errors import MeasurementError

                    raise MeasurementError(f"{executor.stop_reason()}; the profile so far is saved in {path}: "
                                           f"continue with --resume {path}")
            bar.update(1)
    return profile, path, notes


def _first_prepare(measure_once: Callable[[], Record]) -> Callable[[], Record]:
    """``measure_once`` whose re-measurements keep the first attempt's ``prepare`` (a retry reuses the input
    the first attempt made; it must not be recorded as taken from a cache)."""
    first: list[dict | None] = []

    def once() -> Record:
        rec = measure_once()
        if not first:
            first.append(rec.prepare)
        return rec if rec.prepare == first[0] else rec.replace(prepare=first[0])
    return once


def _store_peaks(profile: Profile, dev_id: str, device: str) -> None:
    """Measure the device peaks once per profile and device (hwprofile.roofline)."""
    from .roofline import measure_peaks

    entry = profile.device(dev_id)
    if not isinstance(entry.peaks, dict) or "error" in entry.peaks:
        profile.devices[dev_id] = entry.model_copy(update={"peaks": measure_peaks(device)})


def _measure_item(item: Item, config: SweepConfig, dev_id: str, device: str, artifacts,
                  timing, measure_fn: MeasureFn, started: float) -> Record:
    try:
        counts = _counts(item)
    except Exception as exc:
        return _record(item, dev_id, config, {}, "failed", f"counting failed: {exc}")
    elapsed = time.monotonic() - started
    if config.budget_s is not None and elapsed >= config.budget_s:
        return _record(item, dev_id, config, counts, "skipped", f"sweep budget of {config.budget_s:g}s spent")
    try:
        workload, prepared = prepare_item(item, config, device, artifacts, counts["resolution"])
    except Exception as exc:
        return _record(item, dev_id, config, counts, "failed", f"preparing its input failed: {_one_line(exc)}")
    timeout = config.timeout_s
    if config.budget_s is not None:
        timeout = max(5.0, min(timeout, config.budget_s - elapsed + 5.0))
    extra = {} if config.memory_limit_mb is None else {"memory_limit_mb": config.memory_limit_mb}
    if config.layers:  # per-layer counts come from the ONNX graph (an engine's: the one it was built from)
        graph = artifacts.onnx(item, config.precision)[0] if workload.kind == "engine" else None
        extra["layers"] = {"iterations": config.layers, "onnx_path": graph, "peaks": {"seconds": 0.2}}
    m = measure_fn(item.runner, workload, timing, timeout_s=timeout, device=device, **extra)
    md = m.to_dict() if hasattr(m, "to_dict") else dict(m)
    return _record(item, dev_id, config, counts, md["status"], md.get("reason"), md, prepared)


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
