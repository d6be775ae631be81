"""The regression gate as a library: :func:`check` a profile (or a fresh measurement) against a
baseline, and :func:`calibrate_gate` the thresholds from A/A sessions. ``hwprofile check`` is these
two functions plus rendering.

A baseline file may hold several devices; the current profile is checked against the baseline's
records of its own device. The decisions are :mod:`hwprofile.gate._decide`'s, the measuring is
:mod:`hwprofile.gate._measure`'s, the A/A thresholds :mod:`hwprofile.gate._calibration`'s. Nothing here
prints: what a user should hear while checking goes to ``on_message`` and into the result's ``messages``.
Errors are :class:`~hwprofile.errors.ConfigError` (invalid input or incomparable profiles) and
:class:`~hwprofile.errors.MeasurementError` (nothing measured); a regression is a result, not an error.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from hwprofile.analysis import Side, comparability, join, regression_layers, sides, summarize
from hwprofile.bounds import shown
from hwprofile.errors import ConfigError, MeasurementError
from hwprofile.gate._calibration import Session, observe, sessions_of, thresholds, with_session
from hwprofile.gate._decide import (
    DEFAULT_THRESHOLDS,
    GateConfig,
    GateOptions,
    GateResult,
    device_type,
    evaluate_with_remeasure,
)
from hwprofile.gate._measure import measure_in_rounds, one_thread_on_cpu, remeasurer, save_remeasured, threads_note
from hwprofile.profile import Profile
from hwprofile.sweep import SweepConfig, api_config, api_path

PathLike = Union[str, os.PathLike]
OnMessage = Callable[[str], None]


@dataclass(frozen=True)
class CalibrationResult:
    """One A/A session recorded in the baseline, and the device's thresholds before and after it."""

    device_id: str
    baseline: str
    session: Session
    before: dict  # runner -> metric -> the threshold check used before this session (calibrated or default)
    thresholds: dict  # runner -> metric -> the calibrated threshold now
    sessions: int  # A/A sessions of this device in the baseline, this one included
    confidence: float
    saturated: bool  # some session drifted 99% or more: this machine is too noisy to gate on
    messages: tuple[str, ...] = ()
    measured: str | None = None  # where the profile measured for this session was saved


class _Messages(list):
    """Collects what the user should hear, passing each line on as it comes."""

    def __init__(self, on_message: OnMessage | None) -> None:
        super().__init__()
        self.on_message = on_message

    def __call__(self, text: str) -> None:
        self.append(text)
        if self.on_message is not None:
            self.on_message(text)


@dataclass(frozen=True)
class _Current:
    profile: Profile
    name: str
    sweep_config: SweepConfig | None = None  # what was measured, when check measured it
    path: Path | None = None
    one_thread_default: bool = False


# --------------------------------------------------------------------------------- check

def check(baseline: PathLike | Profile, current: PathLike | Profile | None = None,
          gate: GateOptions | None = None, *, on_message: OnMessage | None = None, **kwargs: Any) -> GateResult:
    """Gate ``current`` against ``baseline``: a record regresses when the confidence interval of its
    current / baseline ratio lies wholly beyond the threshold.

    ``baseline`` and ``current`` are profile paths or loaded :class:`~hwprofile.Profile` objects;
    with ``current=None`` this measures now, with run options as for :func:`hwprofile.run` (the
    fields of :class:`~hwprofile.sweep.SweepConfig`: ``device``, ``runners``, ``models``, ...; on
    CPU one thread per runner unless a ``threads`` option says otherwise). Gate options are the
    fields of :class:`GateOptions`, given as ``gate=GateOptions(...)`` or as keyword arguments (no
    name is both a gate and a run option; ``options`` is SweepConfig's runner options). ``on_message``
    receives each warning or note as it comes (they are also in the result's ``messages``).

    Returns a :class:`~hwprofile.gate.GateResult`: ``passed``, ``exit_code`` (0 pass, 1 regression,
    3 a current measurement failed), ``verdicts``, ``device_id``, ``baseline``, ``notes``. Raises
    ConfigError for a missing baseline (unless ``update_baseline``), bad options or incomparable
    profiles (unless ``allow_mismatch``).

    Example (the synthetic fixtures of tests/data/profiles; the second call measures now)::

        result = hwprofile.check("tests/data/profiles/cpu-a.json", "tests/data/profiles/cpu-slow.json")
        result.passed, result.exit_code, result.counts()  # (False, 1, {'regression': 8})
        hwprofile.check("baselines/ci.json", device="cpu", runners=("ort:cpu",), timing={"repeats": 3},
                        metrics=("latency", "throughput"), remeasure=2, update_baseline=True)
    """
    _check_args("hwprofile.check", baseline, current, on_message)
    if gate is not None and not isinstance(gate, GateOptions):
        raise ConfigError(f"hwprofile.check: gate {shown(gate)}: expected GateOptions(...) or None")
    opts, run_options = _options(gate, kwargs)
    say = _Messages(on_message)
    base_path, base_name, base = _load_baseline(baseline)
    if opts.update_baseline:
        _writable(base_path)
    if base is None and not opts.update_baseline:
        raise ConfigError(f"baseline {base_name!r} does not exist; create it once with "
                          "hwprofile check --baseline FILE --update-baseline (same options)")
    cur = _current(current, run_options, opts, say)
    device = one_device(cur.profile, "the current profile")
    told: dict[str, Any] = dict(device_id=device, baseline=base_name,
                                threads_note=threads_note(cur.profile, cur.one_thread_default),
                                measured=None if cur.path is None else str(cur.path))
    if base is None or (opts.update_baseline and not _holds(base, device)):
        n = save_baseline(_writable(base_path), base, cur.profile, device)
        say(f"no baseline for {device}: saved {n} records to {base_name}; passing")
        return GateResult((), opts.gate_config(), baseline_device=device, messages=tuple(say),
                          baseline_update="created", baseline_records=n, **told)
    base_side = baseline_side(base, base_name, device, opts.allow_mismatch, say)
    cur_side = sides(cur.profile, cur.name)[0]
    guard(base_side, cur_side, opts.allow_mismatch, say)
    calibrated = {}
    if base_side.device_id == device and base.gate.get(device):
        calibrated = thresholds(sessions_of(base.gate, device))
    if opts.remeasure and base_side.device_id != device:
        raise ConfigError("--remeasure needs a baseline measured on this device (the baseline is "
                          f"{base_side.device_id}, this profile {device})")
    remeasure = remeasurer(opts.remeasure, cur.profile, cur.sweep_config, device) if opts.remeasure else None
    result, pooled = evaluate_with_remeasure(base_side.records, cur_side.records, opts.gate_config(calibrated),
                                             remeasure, cross_device=base_side.device_id != device)
    if result.remeasured:
        say(f"saved the re-measured records to {save_remeasured(cur.profile, pooled, cur.path, device)}")
    update, n = "", 0
    if opts.update_baseline:
        update = "updated" if result.exit_code == 0 else "not updated"
        if update == "updated":
            measured = Profile(devices=dict(cur.profile.devices), sweeps=list(cur.profile.sweeps), records=pooled)
            n = save_baseline(_writable(base_path), base, measured, device)
    sessions = len(sessions_of(base.gate, base_side.device_id))
    return dataclasses.replace(
        result, baseline_device=base_side.device_id, calibration_sessions=sessions, messages=tuple(say),
        layer_changes=tuple(regression_layers(result.verdicts, base_side.records, pooled)),
        baseline_update=update, baseline_records=n, **told)


def _writable(path: Path | None) -> Path:
    """The baseline's file, where the gate writes it: a baseline given as a loaded profile is never written."""
    if path is None:
        raise ConfigError("update_baseline writes the baseline: give it as a path, not a loaded profile")
    return path


def _options(gate: GateOptions | None, kwargs: dict) -> tuple[GateOptions, dict]:
    """(gate options, run options) from ``gate=`` and the keyword arguments of :func:`check`."""
    names = {f.name for f in dataclasses.fields(GateOptions)}
    given = {k: v for k, v in kwargs.items() if k in names}
    if gate is not None and given:
        raise ConfigError(f"give gate options as gate= or as keyword arguments, not both (got {', '.join(given)})")
    return gate or GateOptions(**given), {k: v for k, v in kwargs.items() if k not in names}


def _check_args(where: str, baseline, current, on_message) -> None:
    """Types of check's and calibrate_gate's profile arguments, as one-line ConfigErrors naming them."""
    for name, value, optional in (("baseline", baseline, False), ("current", current, True)):
        if isinstance(value, Profile) or (optional and value is None):
            continue
        try:
            if value is None:
                raise ConfigError("")
            api_path(value, name)
        except ConfigError:
            raise ConfigError(f"{where}: {name} {shown(value)}: expected a profile path or a loaded Profile"
                              + (" (or None: measure now)" if optional else "")) from None
    if on_message is not None and not callable(on_message):
        raise ConfigError(f"{where}: on_message {shown(on_message)}: expected a function of one str, or None")


def _load_baseline(baseline: PathLike | Profile) -> tuple[Path | None, str, Profile | None]:
    """(path to write it to, name to show, profile or None where the file does not exist yet)."""
    if isinstance(baseline, Profile):
        return None, "baseline", baseline
    path = Path(baseline)
    return path, str(baseline), Profile.load(path) if path.exists() else None


def _current(current: PathLike | Profile | None, run_options: dict, opts: GateOptions, say: _Messages) -> _Current:
    """The profile to check: the one given, or one measured now (in interleaved rounds) and saved."""
    if current is not None:
        given = [*run_options, *(["out"] if opts.out else [])]
        if given:
            raise ConfigError(f"give a current profile or run options, not both (got {current} and {', '.join(given)})")
        if isinstance(current, Profile):
            return _Current(current, "current")
        return _Current(Profile.load(current), str(current))
    config = api_config("hwprofile.check", run_options)
    config, defaulted = one_thread_on_cpu(config)
    profile, path, notes = measure_in_rounds(config, opts.out, quiet=opts.quiet)
    for note in notes:
        say(f"note: {note}")
    say(f"saved the measured profile to {path}")
    return _Current(profile, "current", config, Path(path), defaulted)


def _holds(profile: Profile, device: str) -> bool:
    return any(r.device_id == device for r in profile.records)


def one_device(profile: Profile, what: str) -> str:
    """The one device whose records ``profile`` holds (ConfigError for none or several)."""
    ids = sorted({r.device_id for r in profile.records})
    if len(ids) != 1:
        raise ConfigError(f"{what} must hold the records of one device; it holds {len(ids)}: {', '.join(ids)}")
    return ids[0]


# ------------------------------------------------------------------------------ baseline

def save_baseline(path: Path, baseline: Profile | None, current: Profile, device: str) -> int:
    """Put the current ok records of ``device`` into ``baseline`` (other devices kept); returns the count."""
    ok = [r for r in current.records if r.device_id == device and r.ok]
    if not ok:
        raise MeasurementError("no record was measured successfully; the baseline was not written")
    base = baseline or Profile(devices={}, sweeps=[], records=[])
    base.devices[device] = current.device(device)
    base.sweeps += [s for s in current.sweeps if s not in base.sweeps]
    for r in ok:
        base.upsert(r)
    base.save(path)
    return len(ok)


def baseline_side(baseline: Profile, name: str, device: str, allow_mismatch: bool, say: OnMessage) -> Side:
    """The baseline's records for ``device`` (or, with ``allow_mismatch``, its only device's)."""
    all_sides = sides(baseline, name)
    mine = [s for s in all_sides if s.device_id == device]
    if mine:
        return mine[0]
    held = ", ".join(s.device_id for s in all_sides) or "no records"
    if not allow_mismatch:
        raise ConfigError(f"baseline {name!r} holds no records for this device ({device}); it holds "
                          f"{held}. Pass --update-baseline to add this device, or --allow-mismatch to gate "
                          "across devices")
    if len(all_sides) != 1:
        raise ConfigError(f"baseline {name!r} holds several devices ({held}) and none is {device}")
    say(f"warning: gating {device} against another device's baseline ({all_sides[0].device_id})")
    return all_sides[0]


def guard(base_side: Side, cur_side: Side, allow_mismatch: bool, say: OnMessage) -> None:
    """Refuse profiles whose settings make them incomparable (unless ``allow_mismatch``); warn of the rest."""
    cross = base_side.device_id != cur_side.device_id
    found = comparability(base_side, cur_side, join(base_side.records, cur_side.records, cross).pairs)
    refuse = summarize(m for m in found if m.severity == "refuse")
    if refuse and not allow_mismatch:
        raise ConfigError("the current profile is not comparable with the baseline: "
                          + "; ".join(m.text() for m in refuse[:4])
                          + (f" (+{len(refuse) - 4} more)" if len(refuse) > 4 else "")
                          + " (pass --allow-mismatch to gate anyway, with --update-baseline to re-baseline)")
    for m in summarize(found):  # each differing field once, its values rounded
        say(f"warning: baseline vs current: {m.text()}")


# ----------------------------------------------------------------------------- calibrate

def calibrate_gate(baseline: PathLike, current: PathLike | Profile | None = None, *, confidence: float = 0.90,
                   seed: int = 0, out: str | None = None, quiet: bool = True, on_message: OnMessage | None = None,
                   **run_options: Any) -> CalibrationResult:
    """Record one A/A session in ``baseline`` and restate this device's calibrated thresholds.

    With nothing changed since the baseline was measured, ``current`` (a profile, or ``None`` to
    measure now with run options as for :func:`check`) drifts from it only as the machine does. The
    session's drift per runner and metric is saved in the baseline file; from then on :func:`check`
    holds this device to the largest drift of all its sessions, rounded up (:mod:`hwprofile.gate._calibration`).

    Example (a copy of the fixture cpu-a.json as the baseline, its re-run cpu-a2.json as the A/A session)::

        cal = calibrate_gate("ci.json", "tests/data/profiles/cpu-a2.json")
        cal.sessions, cal.before, cal.thresholds
        # (1, {'ort:cpu': {'latency': 0.05, 'throughput': 0.05}}, {'ort:cpu': {'latency': 0.05, 'throughput': 0.05}})
        # (a drift of 3% needs 5 sessions before it tightens the 5% default; a larger one widens it at once)
    """
    _check_args("hwprofile.calibrate_gate", baseline, current, on_message)
    if isinstance(baseline, Profile):
        raise ConfigError("hwprofile.calibrate_gate: baseline: expected a path (the A/A session is saved in it)")
    GateConfig(confidence=confidence, seed=seed)  # checks the confidence
    say = _Messages(on_message)
    base_path = Path(baseline)
    base = Profile.load(base_path) if base_path.exists() else None
    if base is None:
        raise ConfigError(f"baseline {str(baseline)!r} does not exist; --calibrate needs one of this device: "
                          "create it first with --update-baseline (same options)")
    cur = _current(current, run_options, GateOptions(confidence=confidence, seed=seed, out=out, quiet=quiet), say)
    device = one_device(cur.profile, "the current profile")
    if not _holds(base, device):
        held = ", ".join(sorted({r.device_id for r in base.records})) or "no records"
        raise ConfigError(f"--calibrate needs the baseline's records of this device ({device}); the baseline "
                          f"holds {held}")
    base_side = baseline_side(base, str(baseline), device, False, say)
    cur_side = sides(cur.profile, cur.name)[0]
    guard(base_side, cur_side, False, say)
    pairs = join(base_side.records, cur_side.records).pairs
    failed = [rc for rb, rc in pairs if rb.ok and not rc.ok and rc.status != "skipped"]
    if failed:
        raise MeasurementError(f"{len(failed)} records failed to measure ({failed[0].status}: "
                               f"{failed[0].reason or 'no reason given'}); the calibration was not saved")
    same = [(rb, rc) for rb, rc in pairs if rb.ok and rc.ok]
    if same and all(rb.latency == rc.latency for rb, rc in same):
        raise ConfigError("the current profile holds the baseline's own measurements; an A/A session needs a new "
                          "measurement of the same configuration (run it again, or give no CURRENT.json)")
    session = observe(base_side.records, cur_side.records, current_name=cur_side.name, confidence=confidence,
                      seed=seed)
    earlier = sessions_of(base.gate, device)
    if any(s.current == session.current and s.observations == session.observations for s in earlier):
        raise ConfigError(f"{session.current} is already an A/A session of this baseline; measure again for another")
    was = thresholds(earlier)
    base.gate = with_session(base.gate, device, session)
    base.save(base_path)
    before: dict[str, dict[str, float]] = {}
    for o in session.observations:
        before.setdefault(o.runner, {})[o.metric] = was.get(o.runner, {}).get(
            o.metric, DEFAULT_THRESHOLDS[device_type(o.runner)][o.metric])
    every = sessions_of(base.gate, device)
    return CalibrationResult(device, str(baseline), session, before, base.gate[device]["thresholds"], len(every),
                             confidence, any(o.drift_max >= 0.99 for s in every for o in s.observations),
                             tuple(say), None if cur.path is None else str(cur.path))
