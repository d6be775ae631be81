"""``hwprofile check --baseline BASE.json [CURRENT.json | run options]``: the regression gate.

Exit codes: 0 pass, 1 a regression, 2 invalid input, 3 environment or measurement failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._common import seed_arg
from ._output import Column, Table, add_format_args, emit, render

RUN_DEFAULTS = {"device": "auto", "runners": None, "models": None, "strategies": None, "scales": None,
                "batch_sizes": None, "precision": "fp32", "mode": "infer", "budget": None, "repeats": None,
                "seconds_per_config": None, "threads": None, "option": None, "memory_limit": None}


def register(sub: argparse._SubParsersAction) -> None:
    from .run import add_run_args

    p = sub.add_parser("check", help="regression gate: compare a profile (or a fresh run) with a baseline",
                       description="Without CURRENT.json, measures now with the run options. A record regresses "
                                   "when the confidence interval of its ratio lies wholly beyond the threshold. "
                                   "Exit 0 pass, 1 regression, 2 invalid input, 3 measurement failure.")
    p.add_argument("current", nargs="?", help="profile to check (default: measure now with the run options)")
    p.add_argument("--baseline", required=True, help="baseline profile (may hold several devices)")
    p.add_argument("--update-baseline", action="store_true",
                   help="create the baseline for this device if it has none; otherwise replace this device's "
                        "records in it when the gate passes")
    p.add_argument("--calibrate", action="store_true",
                   help="A/A calibration: with nothing changed since the baseline, measure it again (or read "
                        "CURRENT.json), store the drift in the baseline and set this device's thresholds from "
                        "it (the largest A/A drift of any record, rounded up); repeat at other times to widen it")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="gate against another device, or despite differing backend versions or threads")
    p.add_argument("--metrics", default="latency", help="metrics to gate: latency,throughput,memory "
                                                        "(default: latency)")
    for metric in ("latency", "throughput", "memory"):
        p.add_argument(f"--{metric}-threshold", type=float, metavar="FRACTION",
                       help=f"{metric} threshold, e.g. 0.05 for 5%% (default: calibrated for this device by "
                            "--calibrate, else per device type, docs/ci.md)")
    p.add_argument("--confidence", type=float, default=0.90, help="interval confidence (default 0.90)")
    p.add_argument("--remeasure", type=int, default=0, metavar="N",
                   help="measure regressed or suspect records N more times (interleaved, one process each) "
                        "and decide on all processes (default 0: off)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here (an existing file only with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing --junit file")
    p.add_argument("--seed", type=seed_arg, default=0, help="bootstrap seed, 0 to 2**32-1 (default 0)")
    add_run_args(p)
    p.add_argument("--out", help="(with run options) where to save the measured profile (default: under runs/)")
    add_format_args(p)
    p.set_defaults(handler=run)


# ----------------------------------------------------------------------------- options

def gate_config(args: argparse.Namespace):
    from ..gate import GateConfig
    from ._common import csv_list

    thresholds = {m: getattr(args, f"{m}_threshold") for m in ("latency", "throughput", "memory")
                  if getattr(args, f"{m}_threshold") is not None}
    return GateConfig(metrics=tuple(csv_list(args.metrics)), thresholds=thresholds, confidence=args.confidence,
                      seed=args.seed)


def _run_options_given(args: argparse.Namespace) -> list[str]:
    return [f"--{k.replace('_', '-')}" for k, v in RUN_DEFAULTS.items() if getattr(args, k) != v]


# ----------------------------------------------------------------------------- current

def current_profile(args: argparse.Namespace):
    """(profile, sweep config, path): loaded from CURRENT.json, or measured now (and saved at path)."""
    from ..errors import ConfigError
    from ..profile import Profile

    if args.current:
        given = _run_options_given(args) + (["--out"] if args.out else [])
        if given:
            raise ConfigError(f"give CURRENT.json or run options, not both (got {args.current} and "
                              f"{', '.join(given)})")
        return Profile.load(args.current), None, None
    from .run import config_from_args

    config = one_thread_on_cpu(args, config_from_args(args))
    profile, path, notes = measure_in_rounds(config, args.out, quiet=args.quiet)
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    sys.stderr.write(f"saved the measured profile to {path}\n")
    return profile, config, Path(path)


def one_thread_on_cpu(args: argparse.Namespace, config):
    """On CPU, check measures every runner with 1 thread unless --threads or a threads option says otherwise:
    on small machines 2-thread sessions drift far more than 1-thread ones (README, the gate's A/A data)."""
    import dataclasses

    from ..runners import resolve_device

    told = args.threads is not None or any(k == "threads" for opts in config.options.values() for k in opts)
    if told or resolve_device(config.device) != "cpu":
        return config
    args.one_thread_default = True
    return dataclasses.replace(config, options={**config.options, "*": {**config.options.get("*", {}),
                                                                        "threads": 1}})


def threads_note(current, defaulted: bool) -> str | None:
    """Which CPU threads each runner of the current profile measured with, and why."""
    seen: dict[str, set] = {}
    for r in current.records:
        if r.runner.endswith(":cpu") and r.settings.threads is not None:
            seen.setdefault(r.runner, set()).add(r.settings.threads)
    if not seen:
        return None
    text = "CPU threads per runner: " + ", ".join(f"{k} {'/'.join(map(str, sorted(v)))}"
                                                 for k, v in sorted(seen.items()))
    return text + (" (check on CPU uses 1 thread per runner unless --threads N or --option threads=N says "
                   "otherwise)" if defaulted else "")


def measure_in_rounds(config, out: str | None, quiet: bool = True):
    """Measure ``config`` with its ``repeats`` processes per record taken in rounds (A B C A B C ...).

    Each round is a sweep of one process per record; the rounds are pooled per record. A record's
    processes then span the whole session, so a slow spell of the machine shows up as drift between
    them (in the interval) instead of shifting whole records. Returns (profile, path, notes).
    """
    import dataclasses
    import tempfile

    from ..compare import identity
    from ..errors import ConfigError
    from ..gate import pool_all
    from ..profile import Profile
    from ..sweep import check_writable, default_out, run_sweep

    rounds = int(config.timing.get("repeats", 1))
    if rounds <= 1:
        return run_sweep(config, out, quiet=quiet, peaks=False)
    if out:
        if Path(out).exists():
            raise ConfigError(f"{out!r} already exists; choose another --out")
        check_writable(Path(out))
    one = dataclasses.replace(config, timing={**config.timing, "repeats": 1},
                              budget_s=None if config.budget_s is None else config.budget_s / rounds)
    found: dict = {}
    with tempfile.TemporaryDirectory(prefix="hwprofile-rounds-") as tmp:
        for i in range(rounds):
            first, _, notes = run_sweep(one, Path(tmp) / f"round-{i}.json", quiet=quiet, peaks=False)
            for r in first.records:
                found.setdefault(identity(r), []).append(r)
            if i == 0:
                devices, sweep = first.devices, dict(first.sweeps[-1])
    sweep.update(config=config.identity(), interleaved_rounds=rounds)
    profile = Profile(devices=devices, sweeps=[sweep], records=[pool_all(rs) for rs in found.values()])
    path = Path(out) if out else default_out(next(iter(devices)))
    profile.save(path)
    return profile, path, notes


def one_device(profile, what: str) -> str:
    from ..errors import ConfigError

    ids = sorted({r.device_id for r in profile.records})
    if len(ids) != 1:
        raise ConfigError(f"{what} must hold the records of one device; it holds {len(ids)}: {', '.join(ids)}")
    return ids[0]


# ---------------------------------------------------------------------------- baseline

def save_baseline(path: Path, baseline, current, device: str) -> int:
    """Put the current ok records of ``device`` into ``baseline`` (other devices kept); returns the count."""
    from ..errors import MeasurementError
    from ..profile import Profile

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


def baseline_side(args: argparse.Namespace, baseline, device: str):
    """The baseline's records for ``device`` (or, with --allow-mismatch, its only device's)."""
    from ..compare import sides
    from ..errors import ConfigError

    all_sides = sides(baseline, args.baseline)
    mine = [s for s in all_sides if s.device_id == device]
    if mine:
        return mine[0]
    held = ", ".join(s.device_id for s in all_sides) or "no records"
    if not args.allow_mismatch:
        raise ConfigError(f"baseline {args.baseline!r} holds no records for this device ({device}); it holds "
                          f"{held}. Pass --update-baseline to add this device, or --allow-mismatch to gate "
                          "across devices")
    if len(all_sides) != 1:
        raise ConfigError(f"baseline {args.baseline!r} holds several devices ({held}) and none is {device}")
    sys.stderr.write(f"warning: gating {device} against another device's baseline ({all_sides[0].device_id})\n")
    return all_sides[0]


def guard(args: argparse.Namespace, base_side, cur_side) -> None:
    from ..compare import comparability, join
    from ..errors import ConfigError

    cross = base_side.device_id != cur_side.device_id
    found = comparability(base_side, cur_side, join(base_side.records, cur_side.records, cross).pairs)
    refuse = [m for m in found if m.severity == "refuse"]
    if refuse and not args.allow_mismatch:
        raise ConfigError("the current profile is not comparable with the baseline: "
                          + "; ".join(m.text() for m in refuse[:4])
                          + (f" (+{len(refuse) - 4} more)" if len(refuse) > 4 else "")
                          + " (pass --allow-mismatch to gate anyway, with --update-baseline to re-baseline)")
    for m in found:
        sys.stderr.write(f"warning: baseline vs current: {m.text()}\n")


# --------------------------------------------------------------------------- remeasure

def _sweep_config_of(current):
    """The sweep configuration a profile was measured with (defaults where it does not say)."""
    from ..sweep import SweepConfig

    cfg = next((s.get("config") for s in reversed(current.sweeps) if s.get("config")), None) or {}
    known = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()
             if k in SweepConfig.__dataclass_fields__}
    return SweepConfig(**known)


def _config_for(base, ident):
    """A one-record sweep configuration for ``ident``; None if its ONNX file is unknown."""
    import dataclasses

    model, strategy, scale, batch, runner, precision, mode = ident
    if model.lower().endswith(".onnx"):
        model = next((m for m in base.models if Path(m).name == model and Path(m).is_file()), None)
        if model is None:
            return None
    mine = base.runner_options(runner)  # the sweep's options narrowed to the one runner measured again
    return dataclasses.replace(base, runners=(runner,), models=(model,), scales=(scale,), batch_sizes=(batch,),
                               strategies=(strategy or base.strategies[0],), precision=precision, mode=mode,
                               timing={**base.timing, "repeats": 1}, budget_s=None,
                               options={runner: mine} if mine else {})


def remeasurer(args: argparse.Namespace, current, sweep_config, device: str):
    """Measures suspects again on this machine: ``--remeasure`` rounds of one process per suspect,
    interleaved (A B C A B C), so a slow spell of the machine hits every suspect alike."""
    import tempfile

    from ..compare import identity
    from ..errors import ConfigError
    from ..gate import pool_all
    from ..measure import device_id as make_device_id, fingerprint
    from ..runners import resolve_device
    from ..sweep import run_sweep

    base = sweep_config or _sweep_config_of(current)
    here = make_device_id(fingerprint(resolve_device(base.device)))
    if here != device:
        raise ConfigError(f"--remeasure measures on this machine ({here}), but the current profile was measured "
                          f"on {device}")

    def remeasure(idents):
        found: dict = {}
        with tempfile.TemporaryDirectory(prefix="hwprofile-remeasure-") as tmp:
            for rnd in range(args.remeasure):
                for n, ident in enumerate(idents):
                    cfg = _config_for(base, ident)
                    if cfg is None:
                        continue
                    profile, _, _ = run_sweep(cfg, Path(tmp) / f"{rnd}-{n}.json", quiet=True, peaks=False)
                    found.setdefault(ident, []).extend(r for r in profile.records if identity(r) == ident and r.ok)
        return [pool_all(recs) for recs in found.values() if recs]

    return remeasure


def save_remeasured(current, pooled, measured_path: Path | None) -> None:
    """Keep the re-measured processes: in the profile this command measured, else in a new file."""
    from ..profile import Profile
    from ..sweep import default_out

    if measured_path is not None:
        path = measured_path
        target = Profile.load(path)
        for r in pooled:
            target.upsert(r)
    else:
        path = default_out(one_device(current, "the current profile")).with_suffix(".remeasured.json")
        target = Profile(devices=dict(current.devices), sweeps=list(current.sweeps), records=list(pooled))
    target.save(path)
    sys.stderr.write(f"saved the re-measured records to {path}\n")


# ------------------------------------------------------------------------------ output

def write_text(path: Path, text: str, replace: bool = False) -> None:
    """Write through the one atomic writer (an existing file only with ``replace``)."""
    from ..atomic import write_text as atomic_write_text

    atomic_write_text(path, text, replace=replace, what="JUnit file")


def _r(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def threshold_notes(result, sessions: int) -> str:
    """Which threshold each runner and metric was held to, and where it came from."""
    c, seen = result.config, {}
    for v in result.verdicts:
        metric = v.metric.split(":", 1)[0]
        if v.threshold is not None and (v.identity["runner"], metric) not in seen:
            seen[(v.identity["runner"], metric)] = (v.threshold, c.threshold_source(metric, v.identity["runner"]))
    said = {"option": "given", "calibrated": f"calibrated on this device from {sessions} A/A session"
                                              f"{'s' if sessions != 1 else ''}",
            "default": "default for the device type; not calibrated here (hwprofile check --calibrate)"}
    return "thresholds: " + "; ".join(f"{runner} {metric} {t:.0%} ({said[src]})"
                                       for (runner, metric), (t, src) in sorted(seen.items()))


def verdict_table(result, title: str, sessions: int = 0, extra_notes: tuple[str, ...] = ()) -> Table:
    from ..gate import describe

    rows = []
    for v in result.verdicts:
        i = v.identity
        limit = None if v.threshold is None else (1 - v.threshold if v.metric == "throughput" else 1 + v.threshold)
        rows.append({"status": v.status.upper() if v.status in ("regression", "failed") else v.status,
                     "model": v.label, "runner": i["runner"], "batch": i["batch"], "mode": i["mode"],
                     "metric": v.metric, "ratio": v.ratio,
                     "ci": None if v.ci_low is None else f"[{v.ci_low:.3f}, {v.ci_high:.3f}]",
                     "limit": limit, "processes": "/".join(map(str, v.processes)) if v.processes[0] else None,
                     "note": v.reason if v.ratio is None else (v.reason or None), "text": describe(v)})
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
    c = result.config
    notes = (f"{counts}. Ratio = current / baseline of the geometric mean of per-process medians (latency); "
             f"{c.confidence:.0%} bootstrap interval over processes; a record regresses when the interval lies "
             "wholly beyond the limit. processes = baseline/current.",)
    if any(v.threshold is not None for v in result.verdicts):
        notes += (threshold_notes(result, sessions),)
    if result.remeasured:
        notes += (f"re-measured before deciding: {len(result.remeasured)} records",)
    if any(v.ratio is not None and 0 < min(v.processes) < 2 for v in result.verdicts):
        from ..gate import DRIFT_FLOOR

        floors = ", ".join(f"{k} {v[1]:.1%}" for k, v in DRIFT_FLOOR.items())
        notes += ("some records were measured in a single process: their drift between processes is assumed "
                  f"({floors}); measure with --repeats 3 or more",)
    notes += tuple(n for n in extra_notes if n)
    return Table(title, (Column("status", "status"), Column("model", "model"), Column("runner", "runner"),
                         Column("batch", "batch"), Column("mode", "mode"), Column("metric", "metric"),
                         Column("ratio", "ratio", _r), Column("ci", "interval"), Column("limit", "limit", _r),
                         Column("processes", "processes"), Column("note", "note")), rows, notes=notes)


def write_outputs(args: argparse.Namespace, result, title: str, extra: dict, sessions: int = 0,
                  more: tuple = (), extra_notes: tuple[str, ...] = ()) -> None:
    from ..gate import junit_xml

    table = verdict_table(result, title, sessions, extra_notes)
    emit([table, *more], args.format, {**extra, **result.to_dict()})
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(render([table], "markdown", None).replace("### ", "## ", 1) + "\n\n")
    if args.junit:
        write_text(Path(args.junit), junit_xml(result), replace=getattr(args, "force", False))


def layer_changes_table(found: list[dict], title: str = "Layers whose time changed most (regressed records)") -> Table:
    from ..layers import changes_table_rows

    ms = (lambda v: "-" if v is None else f"{v:.3g}")
    return Table(title, (Column("model", "model"), Column("runner", "runner"), Column("batch", "batch"),
                         Column("layer", "layer"), Column("op_type", "op"), Column("base_ms", "base ms", ms),
                         Column("current_ms", "current ms", ms), Column("delta_ms", "change ms", ms),
                         Column("ratio", "ratio", lambda v: "-" if v is None else f"{v:.2f}x")),
                 changes_table_rows(found), notes=("per-layer times from hwprofile run --layers; rows matched "
                                                   "by layer name",))


# --------------------------------------------------------------------------- calibrate

def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def calibrate(args: argparse.Namespace, baseline, base_path: Path, base_side, cur_side) -> int:
    """Record one A/A session in the baseline and restate this device's calibrated thresholds."""
    from ..gate_calibration import observe, sessions_of, thresholds, with_session
    from ..compare import join
    from ..errors import ConfigError, MeasurementError
    from ..gate import DEFAULT_THRESHOLDS, device_type

    device = cur_side.device_id
    pairs = join(base_side.records, cur_side.records).pairs
    failed = [rc for rb, rc in pairs if rb.ok and not rc.ok and rc.status != "skipped"]
    if failed:
        raise MeasurementError(f"{len(failed)} records failed to measure ({failed[0].status}: "
                               f"{failed[0].reason or 'no reason given'}); the calibration was not saved")
    same = [(rb, rc) for rb, rc in pairs if rb.ok and rc.ok]
    if same and all(rb.latency == rc.latency for rb, rc in same):
        raise ConfigError("the current profile holds the baseline's own measurements; an A/A session needs a new "
                          "measurement of the same configuration (run it again, or give no CURRENT.json)")
    session = observe(base_side.records, cur_side.records, current_name=cur_side.name,
                      confidence=args.confidence, seed=args.seed)
    earlier = sessions_of(baseline.gate, device)
    if any(s.current == session.current and s.observations == session.observations for s in earlier):
        raise ConfigError(f"{session.current} is already an A/A session of this baseline; measure again for another")
    before = thresholds(earlier)
    baseline.gate = with_session(baseline.gate, device, session)
    after = baseline.gate[device]["thresholds"]
    baseline.save(base_path)
    rows = [{"runner": o.runner, "metric": o.metric, "records": o.records, "drift_median": o.drift_median,
             "drift_max": o.drift_max, "outside": f"{o.outside}/{o.records}",
             "before": before.get(o.runner, {}).get(o.metric, DEFAULT_THRESHOLDS[device_type(o.runner)][o.metric]),
             "threshold": after[o.runner][o.metric]} for o in session.observations]
    n = len(baseline.gate[device]["sessions"])
    notes = (f"drift = max(r, 1/r) - 1 of each record's A/A ratio r; outside = records whose "
             f"{args.confidence:.0%} interval excluded 1 (drift the interval did not cover); threshold = the largest "
             f"drift over this device's {n} A/A session{'s' if n != 1 else ''}, rounded up (1% to 99%). "
             "Saved in the baseline; check uses it unless a --*-threshold option is given.",
             f"a later A/A session drifts beyond the largest of {n} with probability about 1/{n + 1} (the sessions "
             "being alike): calibrate 5 or more times, at other times of day and load, before trusting it",)
    if any(o.drift_max >= 0.99 for x in sessions_of(baseline.gate, device) for o in x.observations):
        notes += ("a threshold reached 99%: this machine drifts too much to gate; run the gate on a quieter one",)
    table = Table(f"hwprofile check --calibrate: {device}, A/A session {n} saved to {args.baseline}",
                  (Column("runner", "runner"), Column("metric", "metric"), Column("records", "records"),
                   Column("drift_median", "A/A drift median", _pct), Column("drift_max", "A/A drift max", _pct),
                   Column("outside", "outside"), Column("before", "threshold before", _pct),
                   Column("threshold", "threshold now", _pct)), rows, notes=notes)
    emit([table], args.format, {"baseline": args.baseline, "device_id": device, "session": session.to_dict(),
                                "thresholds": after, "sessions": n})
    return 0


# --------------------------------------------------------------------------------- run

def run(args: argparse.Namespace) -> int:
    import dataclasses

    from ..compare import sides
    from ..errors import ConfigError
    from ..gate import evaluate_with_remeasure
    from ..profile import Profile

    config = gate_config(args)
    if args.remeasure < 0:
        raise ConfigError("--remeasure must be >= 0")
    if args.junit and os.path.lexists(args.junit) and not args.force:
        raise ConfigError(f"--junit {args.junit!r} exists; pass --force to replace it")
    base_path = Path(args.baseline)
    baseline = Profile.load(base_path) if base_path.exists() else None
    if args.calibrate and (args.update_baseline or args.remeasure or args.allow_mismatch):
        raise ConfigError("--calibrate measures the drift against an unchanged baseline of this device; it does "
                          "not combine with --update-baseline, --remeasure or --allow-mismatch")
    if baseline is None and args.calibrate:
        raise ConfigError(f"baseline {args.baseline!r} does not exist; --calibrate needs one of this device: "
                          "create it first with --update-baseline (same options)")
    if baseline is None and not args.update_baseline:
        raise ConfigError(f"baseline {args.baseline!r} does not exist; create it once with "
                          "hwprofile check --baseline FILE --update-baseline (same options)")
    current, sweep_config, measured_path = current_profile(args)
    device = one_device(current, "the current profile")
    if baseline is None or (args.update_baseline and not any(r.device_id == device for r in baseline.records)):
        n = save_baseline(base_path, baseline, current, device)
        sys.stderr.write(f"no baseline for {device}: saved {n} records to {args.baseline}; passing\n")
        row = {"outcome": "baseline created", "exit_code": 0, "baseline": args.baseline, "device_id": device,
               "records": n}
        emit([Table("hwprofile check: PASS (first use: baseline created)",
                    [Column(k, k.replace("_", " ")) for k in row], [row])], args.format, row)
        return 0
    if args.calibrate and not any(r.device_id == device for r in baseline.records):
        held = ", ".join(sorted({r.device_id for r in baseline.records})) or "no records"
        raise ConfigError(f"--calibrate needs the baseline's records of this device ({device}); the baseline "
                          f"holds {held}")
    base_side = baseline_side(args, baseline, device)
    cur_side = sides(current, args.current or "current")[0]
    guard(args, base_side, cur_side)
    if args.calibrate:
        return calibrate(args, baseline, base_path, base_side, cur_side)
    from ..gate_calibration import sessions_of, thresholds

    if base_side.device_id == device and baseline.gate.get(device):
        config = dataclasses.replace(config, calibrated=thresholds(sessions_of(baseline.gate, device)))
    if args.remeasure and base_side.device_id != device:
        raise ConfigError("--remeasure needs a baseline measured on this device (the baseline is "
                          f"{base_side.device_id}, this profile {device})")
    remeasure = remeasurer(args, current, sweep_config, device) if args.remeasure else None
    result, pooled = evaluate_with_remeasure(base_side.records, cur_side.records, config, remeasure,
                                             cross_device=base_side.device_id != device)
    if result.remeasured:
        save_remeasured(current, pooled, measured_path)
    title = (f"hwprofile check: {result.outcome.upper()} ({device} against {args.baseline}"
             f"{'' if base_side.device_id == device else ' of ' + base_side.device_id})")
    sessions = len(sessions_of(baseline.gate, base_side.device_id))
    from ..layers import regression_layers

    layer_changes = regression_layers(result.verdicts, base_side.records, pooled)
    for found in layer_changes:
        sys.stderr.write(f"regressed: {found['label']} b{found['batch']} {found['runner']}: layers that changed "
                         f"most: {found['text']}\n")
    note = threads_note(current, getattr(args, "one_thread_default", False))
    write_outputs(args, result, title, {"baseline": args.baseline, "device_id": device,
                                        "layer_changes": layer_changes, "threads_note": note}, sessions,
                  (layer_changes_table(layer_changes),) if layer_changes else (), (note,))
    if result.exit_code == 3:
        failed = result.having("failed")
        sys.stderr.write(f"hwprofile: {len(failed)} current measurements failed ({failed[0].reason}); "
                         "a measurement failure, not a regression (exit 3)\n")
    if args.update_baseline:
        if result.exit_code == 0:
            current.records = pooled
            n = save_baseline(base_path, baseline, current, device)
            sys.stderr.write(f"updated {args.baseline}: {n} records of {device}\n")
        else:
            sys.stderr.write(f"baseline not updated: the gate did not pass ({result.outcome})\n")
    return result.exit_code
