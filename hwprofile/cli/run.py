"""``hwprofile run``: profile scaled networks on a device and save a device profile."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from hwprofile.analysis import summary_lines
from hwprofile.cli._common import int_in
from hwprofile.cli._output import ALWAYS, Column, Table, View, add_format_args, emit, num, view_of
from hwprofile.cli._plugins import add_plugin_args, register_plugins
from hwprofile.cli._report import report as show_profile
from hwprofile.cli._run_args import add_run_args, config_from_args, run_options_given
from hwprofile.errors import ConfigError
from hwprofile.fleet import plan_on_cluster, run_ray
from hwprofile.gate import sweep_config_of
from hwprofile.profile import Profile, summary_line
from hwprofile.sweep import make_plan, run_sweep, run_until_decided, still_to_measure
from hwprofile.zoo import scaled_label


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="profile a sweep of scaled networks on this device and save a profile",
                       description="With no options: EfficientNet-B0 scaled by w, r and dWr at s in {1, 4, 16}, "
                                   "batch sizes {1, 8} on CPU ({1, 8, 32, 128} on GPU), every available runner, "
                                   "measured in a seeded random order: a design that can tell activations from "
                                   "flops (docs/measurement.md).")
    add_run_args(p)
    p.add_argument("--out", help="profile to write (default: a new file under runs/); never overwritten")
    p.add_argument("--resume", metavar="FILE", help="continue an interrupted sweep saved in FILE (its own sweep "
                                                    "options are used when none are given)")
    p.add_argument("--remeasure", choices=("disturbed", "unclean"),
                   help="with --resume: measure the file's disturbed records (unclean: noisy ones too) again")
    p.add_argument("--no-peaks", action="store_false", dest="peaks",
                   help="do not measure the device's peak FLOP/s and copy bandwidth (the roofline columns stay "
                        "empty; by default they are measured once per device, or per device kind on Ray)")
    p.add_argument("--until-decided", action="store_true", dest="until_decided",
                   help="after the sweep, add the most informative models or repeats until every runner and batch "
                        "has a verdict (acts, flops, both or neither) or --budget SECONDS is spent; says which "
                        "rows stayed undecided and why (docs/measurement.md)")
    p.add_argument("--plan", action="store_true",
                   help="only print what the sweep would measure, export and build, and an estimate of its "
                        "wall time; needs no device (--plan --device cuda:0 works on a CPU-only machine)")
    add_plugin_args(p)
    add_executor_args(p)
    add_format_args(p)
    p.set_defaults(handler=run)


def add_executor_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where to measure (docs/fleet.md)")
    g.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: this machine (default); ray: one Ray task per measurement on a cluster node "
                        "holding the device (needs hwprofile[ray])")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster: auto (the one started here with ray start) or IP:PORT; default: a new "
                        "local Ray instance")
    g.add_argument("--accelerator", metavar="TYPE", help="Ray accelerator type of the GPU nodes, e.g. A100, L4")
    g.add_argument("--shared-cache", metavar="DIR",
                   help="a directory every Ray node mounts: ONNX files are exported there instead of being "
                        "shipped through Ray's object store")
    g.add_argument("--max-nodes", type=int_in(1, 100000, "--max-nodes"), metavar="N", dest="max_nodes",
                   help="at most N nodes of each device kind measure at the same time (default: every node)")


def run(args: argparse.Namespace) -> int:
    if args.resume and args.out and args.out != args.resume:
        raise ConfigError("--out and --resume name different files; --resume FILE continues FILE in place")
    if args.remeasure and not args.resume:
        raise ConfigError("--remeasure re-measures records of a saved profile: give it with --resume FILE")
    register_plugins(args)
    if args.until_decided and (args.executor != "local" or args.remeasure):
        raise ConfigError("--until-decided measures on this machine (--executor local) and cannot be combined "
                          "with --remeasure")
    if args.until_decided and args.budget is None and not args.plan:
        raise ConfigError("--until-decided needs --budget SECONDS (the most time the sweep and its rounds may take)")
    if args.plan:
        given = [f for f, v in (("--out", args.out), ("--resume", args.resume), ("--remeasure", args.remeasure)) if v]
        if given:
            raise ConfigError(f"--plan only prints what a sweep would do and writes nothing: {', '.join(given)} "
                              "does not apply")
    if args.executor == "local":
        given = [f for f, v in (("--ray-address", args.ray_address), ("--accelerator", args.accelerator),
                                ("--shared-cache", args.shared_cache), ("--max-nodes", args.max_nodes)) if v]
        if given or args.device == "all":
            raise ConfigError(f"{', '.join(given) or '--device all'} needs --executor ray")
    config = config_from_args(args, local=args.executor == "local" or bool(args.plan))
    if args.plan:
        if args.executor == "ray":
            return show_fleet_plan(plan_on_cluster(config, address=args.ray_address, accelerator=args.accelerator,
                                                   max_nodes=args.max_nodes), view_of(args))
        return show_plan(config, view_of(args))
    if args.resume:
        config = resumed_config(args, config)
    out = args.resume or args.out
    report = None
    started = time.monotonic()
    try:
        if args.until_decided:
            profile, path, notes, report = run_until_decided(config, out, resume=bool(args.resume), quiet=args.quiet)
        elif args.executor == "ray":
            profile, path, notes = run_ray(config, out, resume=bool(args.resume), quiet=args.quiet,
                                           address=args.ray_address, accelerator=args.accelerator,
                                           shared_cache=args.shared_cache, remeasure=args.remeasure,
                                           max_nodes=args.max_nodes, peaks=args.peaks)
        else:
            profile, path, notes = run_sweep(config, out, resume=bool(args.resume), quiet=args.quiet,
                                             remeasure=args.remeasure, peaks=None if args.peaks else False,
                                             on_start=lambda: _say(start_line(config, args.resume, args.remeasure)))
    except KeyboardInterrupt as exc:
        saved = getattr(exc, "path", None)
        sys.stderr.write(f"hwprofile: interrupted; the profile so far is saved in {saved}: continue with "
                         f"hwprofile run --resume {saved}\n" if saved else "hwprofile: interrupted before anything "
                         "was saved\n")
        return 130
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    show_profile(profile, view_of(args), str(path), {"until_decided": report.to_dict()} if report else None)
    for line in report.lines() if report else []:
        sys.stderr.write(line + "\n")
    counts: dict[str, int] = {}
    for r in profile.records:
        counts[r.status] = counts.get(r.status, 0) + 1
    sys.stderr.write(f"saved {path} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})\n")
    if args.executor == "ray":
        for line in fleet_lines(profile, time.monotonic() - started):
            sys.stderr.write(line + "\n")
    if not profile.ok_records():
        sys.stderr.write("hwprofile: error: no configuration was measured successfully\n")
        return 3
    quality_line = summary_line(profile.records, path)  # a str: there are ok records
    for line in summary_lines(profile) + ([quality_line] if quality_line else []):
        sys.stderr.write(line + "\n")  # the quality line is the last one
    return 0


def fleet_lines(profile, wall_s: float) -> list[str]:
    """Per device kind of a Ray run: its records per node (short node ids), and the run's wall time."""
    per_kind: dict[str, dict[str, int]] = {}
    for r in profile.records:
        if r.settings.executor == "ray" and r.settings.node and r.status != "skipped":
            nodes = per_kind.setdefault(r.device_id, {})
            nodes[r.settings.node[:8]] = nodes.get(r.settings.node[:8], 0) + 1
    lines = [f"{kind}: {sum(nodes.values())} records measured on {len(nodes)} node{'s' * (len(nodes) != 1)} ("
             + ", ".join(f"{n} {c}" for n, c in sorted(nodes.items())) + ")" for kind, nodes in per_kind.items()]
    return lines + [f"this run took {wall_s:.0f} s"] if lines else []


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 10 s``, ``1 h 05 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def start_line(config, resume: str | None, remeasure: str | None) -> str:
    """What ``run`` is about to do and the plan's estimate of how long it takes (``run --plan``)."""
    plan = make_plan(config)
    records = Profile.load(resume).records if resume and Path(resume).is_file() else ()
    left, seconds = still_to_measure(plan, records, remeasure)
    total = len(plan.items)
    what = f"{total} records" if left == total else f"{left} of {total} records left"
    runners = ", ".join(dict.fromkeys(i.runner for i in plan.items))
    return (f"hwprofile run: {what} on {plan.device} ({runners}), estimated {duration(seconds)} "
            "(a rough planning figure; run --plan lists it)")


def show_plan(config, view: View) -> int:
    """``run --plan``: the items, the artifacts to make and the estimated wall time; measures nothing."""
    plan = make_plan(config)
    rows = [{**vars(i), "label": scaled_label(i.model, i.strategy, i.scale)} for i in plan.items]
    arts = [{**vars(a), "batches": ",".join(map(str, a.batches)) or None} for a in plan.artifacts]
    where = plan.device + ("" if plan.device_present else " (not present here)")
    tables = [Table(f"Plan on {where}: {len(rows)} records", (
                  Column("label", "model", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
                  Column("runner", "runner", priority=ALWAYS), Column("precision", "precision", priority=3),
                  Column("mode", "mode", priority=3), Column("input", "input", priority=1),
                  Column("artifact", "artifact", priority=2), Column("estimated_s", "est. s", num, priority=1)),
                  rows, name="plan"),
              Table("Artifacts to make (each once)", (
                  Column("id", "id", priority=ALWAYS), Column("action", "action", priority=ALWAYS),
                  Column("kind", "kind", priority=1), Column("model", "model", priority=ALWAYS),
                  Column("precision", "precision", priority=3), Column("batches", "batches", priority=2),
                  Column("device", "device", priority=2), Column("estimated_s", "est. s", num, priority=1)), arts,
                  name="artifacts"),
              Table("Can it tell activations from flops? Per row, before measuring", (
                  Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
                  Column("models", "models", priority=1), Column("df", "df", priority=3),
                  Column("se_delta_per_sigma", "SE(δ)/σ", num, priority=ALWAYS),
                  Column("se_acts_per_sigma", "SE(β acts)/σ", num, priority=2),
                  Column("se_flops_per_sigma", "SE(β flops)/σ", num, priority=2),
                  Column("decidable_delta", f"|δ| decided (σ={plan.plan_sigma:g})", num, priority=1)),
                  [vars(r) for r in plan.design], name="design",
                  notes=["SE/σ: the joint fit's standard errors per unit of record-to-record noise σ (SD of log "
                         "latency) for the models planned; |δ| decided: the smallest |β_acts - β_flops| this design "
                         f"tells from 0 in 90% of sweeps at σ = {plan.plan_sigma:g} (a 2-vCPU VM: 0.03-0.3); a pure "
                         "truth has |δ| = 1; - : the design cannot separate flops from acts (docs/measurement.md)",
                         *(f"note: {n}" for n in plan.notes),
                         f"estimated wall time: {duration(plan.estimated_s)} (a rough planning figure)"])]
    emit(tables, view, plan.to_dict())
    return 0


def show_fleet_plan(plan, view: View) -> int:
    """``run --plan --executor ray``: per device kind its nodes, records and expected wall time."""
    rows = [{**{k: getattr(kp, k) for k in ("kind", "device", "nodes", "nodes_used", "slots", "records",
                                            "measuring_s", "estimated_s")}} for kp in plan.kinds]
    records = sum(kp.records for kp in plan.kinds)
    table = Table(f"Plan on the Ray cluster: {records} records on {len(rows)} device kind{'s' * (len(rows) != 1)}", (
        Column("kind", "kind"), Column("device", "device"), Column("nodes", "nodes"),
        Column("nodes_used", "used"), Column("slots", "at once"), Column("records", "records"),
        Column("measuring_s", "one by one s", num), Column("estimated_s", "est. wall s", num)), rows,
        notes=[*(f"note: {n}" for n in plan.notes),
               f"exports on the driver first: {plan.exports_s:.0f} s; then the kinds measure side by side",
               f"estimated wall time: {plan.estimated_s:.0f} s (a rough planning figure)"])
    emit([table], view, plan.to_dict())
    return 0


def resumed_config(args: argparse.Namespace, config):
    """With --resume and no sweep options, the sweep options saved in the file (else those given)."""
    if run_options_given(args) or not Path(args.resume).is_file():
        return config
    saved = sweep_config_of(Profile.load(args.resume), repr(args.resume))
    return dataclasses.replace(saved, retries=config.retries, retry_backoff_s=config.retry_backoff_s,
                               order=config.order)
