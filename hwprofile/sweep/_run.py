"""Sweeps: every (model, strategy, scale, batch, runner) of a configuration measured on one device.

The profile is written after every record (atomically), so an interrupted sweep leaves a valid
file that ``resume=True`` completes without redoing finished records.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from exporters.artifacts import cache_root
from hwprofile import atomic
from hwprofile.analysis import compact, pool, select_peaks, unavailable
from hwprofile.atomic import safe_name
from hwprofile.bounds import shown
from hwprofile.errors import ConfigError, Interrupted, MeasurementError, RunnerUnavailable, SchemaError
from hwprofile.graph import count_onnx
from hwprofile.locks import profile_lock
from hwprofile.measure import measure_peaks, measure_with_retries
from hwprofile.profile import (
    QUALITIES,
    REMEASURE,
    Measurement,
    Profile,
    Record,
    RecordKey,
    TimingConfig,
    Workload,
    needs_remeasure,
    utc_now,
    with_quality,
)
from hwprofile.runners import RUNNER_NAMES, Artifacts, availability, prepare_input, runner_class
from hwprofile.sweep._config import (
    FINAL,
    PARAMS,
    Item,
    SweepConfig,
    check_runner_options,
    plan,
    timing_config,
    validate,
)
from hwprofile.sweep._executor import Executor
from hwprofile.sweep._local import LocalExecutor
from hwprofile.zoo import complexity

# --------------------------------------------------------------------------- execution

def clock() -> float:
    """Seconds on the clock a sweep's ``--budget`` runs on (monotonic; tests stand a scripted clock in)."""
    return time.monotonic()


def _record(item: Item, device_id: str, config: SweepConfig, counts: dict, status: str,
            reason: str | None, m: Measurement | None = None, prepared: dict | None = None,
            settings: dict | None = None) -> Record:
    """The record of ``item``: measured (``m``), or not (its status and reason; ``settings``: where it ran)."""
    fields = dict(device_id=device_id, model=item.model, strategy=item.strategy, scale=item.scale,
                  batch=item.batch, runner=item.runner, precision=config.precision, mode=config.mode,
                  resolution=counts.get("resolution", 0), flops=counts.get("flops"), params=counts.get("params"),
                  acts=counts.get("acts"), status=status, reason=reason,
                  latency=m.latency if m else None, throughput=m.throughput if m else None,
                  memory=(m.memory if m else None) or {}, settings=(m.settings if m else settings) or {},
                  source="onnx" if item.onnx_path else "zoo", measured_utc=utc_now(),
                  layers=_compact_layers(m.layers if m else None), prepare=prepared, energy=m.energy if m else None)
    try:
        return Record.from_dict(fields, where="measured record")
    except SchemaError as exc:  # a runner reported something no profile may hold (NaN, a zero median...)
        if fields["status"] != "ok":
            raise
        bad = {**fields, "status": "failed", "latency": None, "throughput": None, "memory": {}, "energy": None,
               "reason": f"the measurement is out of range ({exc})"}
        return Record.from_dict(bad, where="measured record")


def _compact_layers(raw: dict | None) -> dict | None:
    """The stored breakdown; a per-layer output no profile may hold is the breakdown's error, never the record's."""
    if not raw:
        return None
    try:
        return compact(raw)
    except SchemaError as exc:
        return unavailable(f"the per-layer output is out of range ({exc})")


def _counts(item: Item) -> dict:
    if item.spec is not None:
        cx = complexity(item.spec)
        return {"flops": cx.flops, "params": cx.params, "acts": cx.acts, "resolution": cx.resolution}
    oc = count_onnx(item.onnx_path, batch=1)
    return {"flops": oc.flops, "params": oc.params, "acts": oc.acts, "resolution": oc.resolution}


def prepare_item(item: Item, config: SweepConfig, device: str, artifacts, resolution: int):
    """(Workload, prepare record) for ``item``: its runner makes the input it declares (a torch module,
    a verified ONNX graph or a TensorRT engine; hwprofile.runners._prepare). One step per item, so an
    executor can prepare an item wherever it will measure it."""
    return prepare_input(runner_class(item.runner).input, item, config, device, artifacts, resolution)


#: hwprofile.measure.measure's signature: returns a Measurement (a plain dict with its fields, from a plugin or a
#: test's stand-in, is typed where it enters: Measurement.of)
MeasureFn = Callable[..., "Measurement | Mapping[str, Any]"]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block (a killed sweep ends like ^C: resumable)."""
    def handler(_sig, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the clean-up short
        raise KeyboardInterrupt
    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:  # once it fired, SIGTERM stays ignored while the process ends (timeout signals it twice)
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, old)


def check_writable(path: Path) -> None:
    """Fail before measuring if ``path`` cannot be written (exit 2; a full disk exit 3)."""
    atomic.check_writable(path, "the profile")


def default_out(device_id: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{safe_name(device_id)}-{stamp}.json"


def check_new_profile(out: Path) -> None:
    """A new profile's path: free (not even a dangling link: nothing saved is replaced) and writable."""
    if os.path.lexists(out):
        raise ConfigError(f"{str(out)!r} already exists; choose another --out, or --resume it")
    check_writable(out)


def open_profile(config: SweepConfig, out: Path, resume: bool, device_id: str, fp: dict) -> Profile:
    """A fresh profile at a new path, or the resumed one after checking it matches."""
    if not resume:
        check_new_profile(out)
        return Profile(devices={device_id: fp}, sweeps=[{"device_id": device_id, "config": config.identity(),
                                                          "started_utc": utc_now()}])
    profile = Profile.load(out)
    check_resumable(profile, out, device_id, config)
    check_writable(out)
    return profile


def check_resumable(profile: Profile, out: Path, device_id: str, config: SweepConfig) -> None:
    """A resumed profile must hold ``device_id`` and its last sweep there must have ``config``'s identity."""
    if device_id not in profile.devices:
        raise ConfigError(f"cannot resume {str(out)!r}: it was measured on {', '.join(profile.devices)}, "
                          f"this is {device_id}")
    mine = [s for s in profile.sweeps if s.get("device_id") == device_id]
    if not mine or mine[-1].get("config") != config.identity():
        raise ConfigError(f"cannot resume {str(out)!r}: its sweep configuration differs from the options given")


def check_remeasure(remeasure: str | None, resume: bool) -> None:
    if remeasure is not None and (remeasure not in REMEASURE or not resume):
        raise ConfigError(f"--remeasure {remeasure!r}: expected one of {', '.join(REMEASURE)}, "
                          "with --resume FILE")


def target_items(config: SweepConfig, target) -> tuple[list[Item], list[str]]:
    """The ordered items of ``config`` on ``target`` (an executors.Target), checked; and notes."""
    device, runners = target.device, target.runners
    if not runners:
        why = [availability(r, device)[1] for r in RUNNER_NAMES if runner_class(r).device_type == device.split(":")[0]]
        raise RunnerUnavailable(f"no runner is available on {device} (" + "; ".join(why) + ")")
    check_runner_options(config, runners)
    items, notes = plan(config, device, runners)
    if not items:
        raise ConfigError("empty sweep: no configuration to measure ("
                          + "; ".join(notes or ["check the options"]) + ")")
    if any(item.spec is not None and runner_class(item.runner).input != "module" for item in items):
        cache_root("onnx", config.cache_dir)  # an unusable export cache is one line now, not a failed record each
    return items, notes


def item_key(dev_id: str, item: Item, config: SweepConfig) -> RecordKey:
    """The key of the record ``item`` makes (Record.key())."""
    return RecordKey(dev_id, item.model, item.strategy, float(item.scale), int(item.batch), item.runner,
                     config.precision, config.mode)


def done_keys(profile: Profile, remeasure: str | None) -> set:
    """Keys of the profile's records a resumed sweep keeps (final, and not to be re-measured)."""
    return {k for k, r in profile.by_key().items() if r.status in FINAL and not needs_remeasure(r, remeasure)}


def run_sweep(config: SweepConfig, out: str | os.PathLike | None = None, *, resume: bool = False,
              quiet: bool = False, measure_fn: MeasureFn | None = None, remeasure: str | None = None,
              peaks: bool | None = None, executor=None,
              on_start: Callable[[], None] | None = None) -> tuple[Profile, Path, list[str]]:
    """Measure every item of ``config``; returns (profile, its path, notes).

    ``executor`` (hwprofile.sweep._executor) says where measurements run; the default is this machine. An executor
    that schedules measurements itself (it has a ``run_sweep`` method: Ray, concurrently over a cluster's
    nodes) runs the whole sweep.
    ``remeasure`` ("disturbed" | "unclean", with ``resume``) measures such records of the file again.
    ``peaks``: measure the device peaks once (default: yes when measuring on this machine with the real
    ``measure``, unless the profile already holds them). ``on_start()`` is called once everything is
    checked, just before the first measurement (``hwprofile run`` prints its estimate then).
    """
    if hasattr(executor, "run_sweep"):
        if measure_fn is not None:
            raise ConfigError("give run_sweep a measure_fn or an executor, not both")
        if on_start is not None:
            on_start()
        return executor.run_sweep(config, out, resume=resume, quiet=quiet, remeasure=remeasure, peaks=peaks)
    with sweep_session(config, out, resume=resume, measure_fn=measure_fn, remeasure=remeasure, peaks=peaks,
                       executor=executor) as (session, items, notes, done):
        if on_start is not None:
            on_start()
        measure_items(session, items, done, quiet)
    return session.profile, session.path, notes


@contextmanager
def sweep_session(config: SweepConfig, out: str | os.PathLike | None = None, *, resume: bool = False,
                  measure_fn: MeasureFn | None = None, remeasure: str | None = None, peaks: bool | None = None,
                  executor=None) -> Iterator[tuple["Session", list[Item], list[str], set]]:
    """Check ``config``, lock and open (or resume) its profile and plan it: yields (session, items, notes, keys
    already done). The profile stays locked (hwprofile.locks) until the block ends; SIGTERM and SIGINT end it
    as :class:`~hwprofile.errors.Interrupted`, naming the file that holds the work so far. On a normal end the
    device peaks are completed at the thread counts the records ran with (:meth:`Session.finish`)."""
    if executor is not None and measure_fn is not None:
        raise ConfigError("give run_sweep a measure_fn or an executor, not both")
    executor = executor or LocalExecutor(measure_fn)
    validate(config, local=isinstance(executor, LocalExecutor))
    check_remeasure(remeasure, resume)
    timing = timing_config(config)
    target = executor.target(config)
    device, runners, fp, dev_id = target.device, target.runners, target.fingerprint, target.device_id
    items, notes = target_items(config, target)
    path = Path(out) if out else default_out(dev_id)
    if not resume:
        check_new_profile(path)
    with profile_lock(path), sigterm_as_interrupt():
        saved = resume  # the work so far is in the file (named by Interrupted)
        try:
            profile = open_profile(config, path, resume, dev_id, fp)
            want_peaks = (measure_fn is None and isinstance(executor, LocalExecutor)) if peaks is None else peaks
            if want_peaks:  # at every thread count the sweep's CPU runners are given (None: their default)
                _store_peaks(profile, dev_id, device, [config.runner_options(r).get("threads") for r in runners])
            profile.save(path)
            saved = True
            session = Session(config, profile, path, dev_id, device, executor, timing,
                              Artifacts.for_items(items, config.cache_dir, detailed=bool(config.layers)), clock(),
                              want_peaks=want_peaks)
            yield session, items, notes, done_keys(profile, remeasure)
            session.finish()
        except KeyboardInterrupt:
            raise Interrupted(path if saved else None) from None


def measure_items(session: "Session", items: list[Item], done: Set[tuple] = frozenset(), quiet: bool = True) -> None:
    """Measure every item whose key is not in ``done``, in order, with a progress bar (which says when a
    disturbed record is measured again)."""
    with progress(len(items), quiet) as bar:
        for item in items:
            where = f"{item.label} b{item.batch} {item.runner}"
            bar.set_postfix_str(where, refresh=False)
            if session.key(item) not in done:
                session.measure(item, on_retry=_retry_note(bar, where))
            bar.update(1)


@dataclass
class Session:
    """What measuring one more item of a sweep needs: the profile it goes into (saved after each record),
    the device, the executor and the clock the budget runs on."""

    config: SweepConfig
    profile: Profile
    path: Path
    dev_id: str
    device: str
    executor: Executor
    timing: TimingConfig
    artifacts: Artifacts
    started: float
    #: runner -> the shortest measurement of this sweep (s): what a record needs (the budget's tail)
    durations: dict[str, float] = field(default_factory=dict)
    want_peaks: bool = False  # measure the device peaks here (at the thread counts the records ran with)

    def elapsed_s(self) -> float:
        return clock() - self.started

    def finish(self) -> None:
        """At the sweep's end: the device peaks at the thread counts the records ran with, where the default was
        not the peaks' count (a 1-thread record is compared with 1-thread peaks)."""
        if self.want_peaks:
            counts = [r.settings.threads for r in self.profile.records if r.ok and r.device_id == self.dev_id]
            if _store_peaks(self.profile, self.dev_id, self.device, counts):
                self.profile.save(self.path)

    def key(self, item: Item) -> RecordKey:
        """The identity of the record ``item`` makes (Record.key)."""
        return item_key(self.dev_id, item, self.config)

    def measure(self, item: Item, *, pool_into: Record | None = None,
                on_retry: Callable[[int, int, tuple], None] | None = None) -> Record:
        """Measure ``item`` (the system check and retries when measured here), store it and save the profile.
        With ``pool_into``, a measurement that is not disturbed is pooled into that record as more processes
        (hwprofile.analysis.pool) instead of replacing it."""
        config, executor = self.config, self.executor

        def once() -> Record:
            return _measure_item(item, config, self.dev_id, self.device, self.artifacts, self.timing,
                                 executor.measure, self.started, self.durations)
        if isinstance(executor, LocalExecutor):  # the system check and the back-off read this machine
            rec = measure_with_retries(first_prepare(once), self.device, retries=config.retries,
                                               backoff_s=config.retry_backoff_s, on_retry=on_retry)
        else:  # judged on the readings taken where it ran
            rec = with_quality(once())
        if pool_into is not None:  # a repeat: its spread from the first is information (weights), not a fault
            if not (rec.ok and rec.quality != "disturbed"):
                return pool_into
            worse = max((pool_into, rec), key=lambda r: QUALITIES.index(r.quality or "clean"))
            rec = pool(pool_into, rec).replace(quality=worse.quality, quality_reasons=list(worse.quality_reasons))
        self.profile.upsert(rec)
        self.profile.save(self.path)
        if executor.stop_reason():
            raise MeasurementError(f"{executor.stop_reason()}; the profile so far is saved in {self.path}: "
                                   f"continue with --resume {self.path}")
        return rec


def run(*, out: str | os.PathLike | None = None, resume: bool = False, quiet: bool = True, **options) -> Profile:
    """Profile a sweep on this device and save it; mirrors ``hwprofile run`` (options: the fields of
    :class:`~hwprofile.sweep.SweepConfig`). Returns the profile.

    Every argument is checked before anything runs (types, hwprofile.bounds): a bad one is a ConfigError
    naming the parameter, e.g. ``hwprofile.run: batch_sizes 5000: expected an integer from 1 to 4096``.

    >>> profile = hwprofile.run(device="cpu", strategies=("w", "dWr"), scales=(1, 4), batch_sizes=(1,))
    """
    config = api_config("hwprofile.run", options)
    try:
        out = api_path(out, "out")
        for name, value in (("resume", resume), ("quiet", quiet)):
            if not isinstance(value, bool):
                raise ConfigError(f"{name} {shown(value)}: expected True or False")
    except ConfigError as exc:
        raise ConfigError(f"hwprofile.run: {exc}") from None
    profile, _path, _notes = run_sweep(config, out, resume=resume, quiet=quiet)
    return profile


def api_config(where: str, options: dict) -> SweepConfig:
    """A SweepConfig from the Python API's keyword arguments, checked before anything runs; errors are
    ConfigErrors that start with ``where`` and name the parameter."""
    known = [f.name for f in dataclasses.fields(SweepConfig)]
    unknown = sorted(k for k in options if k not in known)
    if unknown:
        raise ConfigError(f"{where}: unexpected keyword argument {unknown[0]!r}; the run options are "
                          f"{', '.join(known)}")
    tuples: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else (v,) if k in _LISTS and isinstance(v, str)
                              else v for k, v in options.items()}
    config = SweepConfig(**tuples)
    try:
        validate(config, names=PARAMS, local=True)
    except ConfigError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return config


#: SweepConfig fields that hold lists: a single string is taken as a list of one
_LISTS = ("runners", "models", "strategies")


def api_path(value, name: str) -> Path | None:
    """``value`` (a path, or None) as a Path, or a ConfigError naming the parameter."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or isinstance(value, bytes):
        raise ConfigError(f"{name} {shown(value)}: expected a file path (str or os.PathLike) or None")
    text = os.fspath(value)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise ConfigError(f"{name} {shown(value)}: expected a non-empty file path")
    return Path(text)


def first_prepare(measure_once: Callable[[], Record]) -> Callable[[], Record]:
    """``measure_once`` whose re-measurements keep the first attempt's ``prepare`` (a retry reuses the input
    the first attempt made; it must not be recorded as taken from a cache)."""
    first: list[dict | None] = []

    def once() -> Record:
        rec = measure_once()
        if not first:
            first.append(rec.prepare)
        return rec if rec.prepare == first[0] else rec.replace(prepare=first[0])
    return once


def _store_peaks(profile: Profile, dev_id: str, device: str, counts: list[int | None]) -> bool:
    """Measure the device peaks once per profile and device (measure_peaks), and again at every CPU thread
    count in ``counts`` they were not measured at (``at_threads``: a 1-thread record is compared with 1-thread
    peaks). Whether the device entry changed."""
    entry = profile.device(dev_id)
    peaks = entry.peaks if isinstance(entry.peaks, dict) and "error" not in entry.peaks else None
    changed = peaks is None
    if peaks is None:
        first = next((t for t in counts if t is not None), None) if None not in counts else None
        peaks = measure_peaks(device) if first is None else measure_peaks(device, threads=first)
    if "error" not in peaks and not device.startswith("cuda"):
        extra = dict(peaks.get("at_threads") or {})
        for threads in dict.fromkeys(t for t in counts if t is not None):
            if select_peaks(peaks, threads) is None and str(threads) not in extra:
                more = measure_peaks(device, threads=threads)
                if "error" not in more:
                    extra[str(threads)] = more
                    changed = True
        if extra:
            peaks = {**peaks, "at_threads": extra}
    if changed:
        profile.devices[dev_id] = entry.model_copy(update={"peaks": peaks})
    return changed


def needed_s(durations: dict[str, float], runner: str) -> float:
    """What a record of ``runner`` needs, as this sweep has seen it: its shortest measurement so far, else the
    shortest of any runner, else 0 (nothing seen yet)."""
    return durations.get(runner, min(durations.values(), default=0.0))


def _budget_left(config: SweepConfig, started: float) -> float | None:
    return None if config.budget_s is None else config.budget_s - (clock() - started)


def needs_peaks(profile: Profile, dev_id: str) -> bool:
    """Whether the profile lacks the device's peaks (or holds only why they could not be measured)."""
    peaks = profile.device(dev_id).peaks
    return not isinstance(peaks, dict) or "error" in peaks


def set_peaks(profile: Profile, dev_id: str, peaks: dict | None) -> None:
    profile.devices[dev_id] = profile.device(dev_id).model_copy(update={"peaks": peaks})


@dataclass(frozen=True)
class ReadyItem:
    """An item whose input is made: what measuring it needs, and how its record is written. Plain data, so an
    executor can send it to the machine that measures (hwprofile.fleet._ray)."""

    item: Item
    config: SweepConfig
    device_id: str
    device: str
    counts: dict
    workload: Workload
    prepared: dict | None
    timeout_s: float
    extra: dict  # measure() keywords: memory_limit_mb, layers

    def measure(self, timing, measure_fn: MeasureFn, settings: dict | None = None) -> Record:
        """Measure once with ``measure_fn`` (hwprofile.measure.measure's signature); ``settings`` are added to
        the measurement's settings (where it ran)."""
        m = Measurement.of(measure_fn(self.item.runner, self.workload, timing, timeout_s=self.timeout_s,
                                      device=self.device, **self.extra))
        if settings:
            m = m.with_settings(**settings)
        return self.record(m.status, m.reason, m)

    def record(self, status: str, reason: str | None, m: Measurement | None = None,
               settings: dict | None = None) -> Record:
        return _record(self.item, self.device_id, self.config, self.counts, status, reason, m, self.prepared,
                       settings)


def ready_item(item: Item, config: SweepConfig, dev_id: str, device: str, artifacts, started: float,
               durations: dict[str, float] | None = None) -> ReadyItem | Record:
    """Count ``item`` and make its input: a ReadyItem, or the item's record when it cannot be measured (its
    counting or input failed: ``failed``; the sweep's budget is spent: ``skipped``). Under a budget, a record
    is not started when less time is left than records of this sweep have needed (``durations``: runner ->
    its shortest measurement; it is 'skipped', not killed halfway as a 'timeout'); one that is started gets
    the time left (at least what such records needed) plus 5 s before its child is killed."""
    durations = {} if durations is None else durations
    try:
        counts = _counts(item)
    except Exception as exc:
        return _record(item, dev_id, config, {}, "failed", f"counting failed: {exc}")
    left = _budget_left(config, started)
    if left is not None and left <= 0:
        return _record(item, dev_id, config, counts, "skipped", f"sweep budget of {config.budget_s:g}s spent")
    try:
        workload, prepared = prepare_item(item, config, device, artifacts, counts["resolution"])
    except Exception as exc:
        return _record(item, dev_id, config, counts, "failed", f"preparing its input failed: {_one_line(exc)}")
    timeout = config.timeout_s
    left, need = _budget_left(config, started), needed_s(durations, item.runner)
    if left is not None:
        if left <= 0 or left < need:
            return _record(item, dev_id, config, counts, "skipped",
                           f"sweep budget of {config.budget_s:g}s: {max(left, 0):.0f} s left, less than the "
                           f"{need:.0f} s a record needed in this sweep" if need else
                           f"sweep budget of {config.budget_s:g}s spent", prepared=prepared)
        timeout = min(timeout, max(left, need) + 5.0)
    extra: dict[str, Any] = {} if config.memory_limit_mb is None else {"memory_limit_mb": config.memory_limit_mb}
    if config.layers:  # per-layer counts come from the ONNX graph (an engine's: the one it was built from)
        graph = artifacts.onnx(item, config.precision)[0] if workload.kind == "engine" else None
        extra["layers"] = {"iterations": config.layers, "onnx_path": graph, "peaks": {"seconds": 0.2}}
    return ReadyItem(item, config, dev_id, device, counts, workload, prepared, timeout, extra)


def unmeasured(item: Item, config: SweepConfig, dev_id: str, status: str, reason: str) -> Record:
    """The record of an item that was not measured (``failed``: nowhere to measure it; ``skipped``), with its
    counts when they can be had; its input is not made."""
    try:
        counts = _counts(item)
    except Exception:
        counts = {}
    return _record(item, dev_id, config, counts, status, reason)


def _measure_item(item: Item, config: SweepConfig, dev_id: str, device: str, artifacts,
                  timing, measure_fn: MeasureFn, started: float, durations: dict[str, float] | None = None) -> Record:
    """Measure one item here (``ready_item``, then its measurement); an ok record's time joins ``durations``."""
    durations = {} if durations is None else durations
    ready = ready_item(item, config, dev_id, device, artifacts, started, durations)
    if isinstance(ready, Record):
        return ready
    began = clock()
    rec = ready.measure(timing, measure_fn)
    if rec.status == "ok":
        took = clock() - began
        durations[item.runner] = min(durations.get(item.runner, took), took)
    return rec


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"[:300]


def _retry_note(bar, where: str) -> Callable[[int, int, tuple], None]:
    """Says on the progress bar that a disturbed record is being measured again, and why."""
    def note(attempt: int, retries: int, reasons: tuple) -> None:
        why = f": {reasons[0]}" if reasons else ""
        bar.set_postfix_str(f"{where} - disturbed{why}; retry {attempt}/{retries}", refresh=True)
    return note


@contextmanager
def progress(total: int, quiet: bool, initial: int = 0):
    """The sweep's progress bar: records of ``total`` (``initial`` of them already in the profile)."""
    bar = tqdm(total=total, initial=initial, disable=quiet, unit="cfg", dynamic_ncols=True, leave=True)
    try:
        yield bar
    finally:
        bar.close()
