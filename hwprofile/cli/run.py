"""``hwprofile run``: profile scaled networks on a device and save a device profile."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..errors import ConfigError
from ..executors.ray import run_ray
from ..gate_measure import sweep_config_of
from ..profile import Profile
from ..quality import summary_line
from ..roofline import summary_lines
from ..sweep import run_sweep
from ..sweep_plan import make_plan
from ._output import Column, Table, add_format_args, emit, num
from ._report import payload, tables
from ._run_args import add_run_args, config_from_args, run_options_given


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="profile a sweep of scaled networks on this device and save a profile",
                       description="With no options: EfficientNet-B0 scaled by d, w, r, dw, dwr and dWr at s in "
                                   "{1, 4}, batch sizes {1, 8} on CPU ({1, 8, 32, 128} on GPU), every available runner.")
    add_run_args(p)
    p.add_argument("--out", help="profile to write (default: a new file under runs/); never overwritten")
    p.add_argument("--resume", metavar="FILE", help="continue an interrupted sweep saved in FILE (its own sweep "
                                                    "options are used when none are given)")
    p.add_argument("--remeasure", choices=("disturbed", "unclean"),
                   help="with --resume: measure the file's disturbed records (unclean: noisy ones too) again")
    p.add_argument("--plan", action="store_true",
                   help="only print what the sweep would measure, export and build, and an estimate of its "
                        "wall time; needs no device (--plan --device cuda:0 works on a CPU-only machine)")
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


def run(args: argparse.Namespace) -> int:
    if args.resume and args.out and args.out != args.resume:
        raise ConfigError("--out and --resume name different files; --resume FILE continues FILE in place")
    if args.remeasure and not args.resume:
        raise ConfigError("--remeasure re-measures records of a saved profile: give it with --resume FILE")
    if args.plan:
        given = [f for f, v in (("--out", args.out), ("--resume", args.resume), ("--remeasure", args.remeasure)) if v]
        if given:
            raise ConfigError(f"--plan only prints what a sweep would do and writes nothing: {', '.join(given)} "
                              "does not apply")
    config = config_from_args(args, local=args.executor == "local" or bool(args.plan))
    if args.plan:
        return show_plan(config, args.format)
    if args.resume:
        config = resumed_config(args, config)
    out = args.resume or args.out
    if args.executor == "local":
        given = [f for f, v in (("--ray-address", args.ray_address), ("--accelerator", args.accelerator),
                                ("--shared-cache", args.shared_cache)) if v]
        if given or args.device == "all":
            raise ConfigError(f"{', '.join(given) or '--device all'} needs --executor ray")
    try:
        if args.executor == "ray":
            profile, path, notes = run_ray(config, out, resume=bool(args.resume), quiet=args.quiet,
                                           address=args.ray_address, accelerator=args.accelerator,
                                           shared_cache=args.shared_cache, remeasure=args.remeasure)
        else:
            profile, path, notes = run_sweep(config, out, resume=bool(args.resume), quiet=args.quiet,
                                             remeasure=args.remeasure)
    except KeyboardInterrupt as exc:
        path = getattr(exc, "path", None)
        sys.stderr.write(f"hwprofile: interrupted; the profile so far is saved in {path}: continue with "
                         f"hwprofile run --resume {path}\n" if path else "hwprofile: interrupted before anything "
                         "was saved\n")
        return 130
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    emit(tables(profile), args.format, payload(profile))
    counts = {}
    for r in profile.records:
        counts[r.status] = counts.get(r.status, 0) + 1
    sys.stderr.write(f"saved {path} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})\n")
    if not profile.ok_records():
        sys.stderr.write("hwprofile: error: no configuration was measured successfully\n")
        return 3
    for line in summary_lines(profile) + [summary_line(profile.records, path)]:
        sys.stderr.write(line + "\n")  # the quality line is the last one
    return 0


def show_plan(config, fmt: str) -> int:
    """``run --plan``: the items, the artifacts to make and the estimated wall time; measures nothing."""
    plan = make_plan(config)
    rows = [{**vars(i), "label": i.model if not i.strategy else f"{i.model} {i.strategy} x{i.scale:g}"}
            for i in plan.items]
    arts = [{**vars(a), "batches": ",".join(map(str, a.batches)) or None} for a in plan.artifacts]
    where = plan.device + ("" if plan.device_present else " (not present here)")
    tables = [Table(f"Plan on {where}: {len(rows)} records", (
                  Column("label", "model"), Column("batch", "batch"), Column("runner", "runner"),
                  Column("precision", "precision"), Column("mode", "mode"), Column("input", "input"),
                  Column("artifact", "artifact"), Column("estimated_s", "est. s", num)), rows),
              Table("Artifacts to make (each once)", (
                  Column("id", "id"), Column("action", "action"), Column("kind", "kind"), Column("model", "model"),
                  Column("precision", "precision"), Column("batches", "batches"), Column("device", "device"),
                  Column("estimated_s", "est. s", num)), arts,
                  notes=[*(f"note: {n}" for n in plan.notes),
                         f"estimated wall time: {plan.estimated_s:.0f} s (a rough planning figure)"])]
    emit(tables, fmt, plan.to_dict())
    return 0


def resumed_config(args: argparse.Namespace, config):
    """With --resume and no sweep options, the sweep options saved in the file (else those given)."""
    if run_options_given(args) or not Path(args.resume).is_file():
        return config
    saved = sweep_config_of(Profile.load(args.resume), repr(args.resume))
    return dataclasses.replace(saved, retries=config.retries, retry_backoff_s=config.retry_backoff_s)
