"""``hwprofile run``: profile scaled networks on a device and save a device profile."""

from __future__ import annotations

import argparse
import sys

from ._common import csv_list, float_list
from ._output import add_format_args, emit


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


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The sweep options, shared with ``hwprofile check``."""
    p.add_argument("--device", default="auto", help="auto | cpu | cuda:N (default: auto); with --executor ray "
                                                     "also a device kind, or all: every kind of the cluster")
    p.add_argument("--runners", help="comma-separated, e.g. torch:cpu,ort:cpu (default: all available)")
    p.add_argument("--models", help="zoo names or .onnx files (default: EfficientNet-B0)")
    p.add_argument("--strategies", help="default: d,w,r,dw,dwr,dWr")
    p.add_argument("--scales", help="flops factors (default: 1,4)")
    p.add_argument("--batch-sizes", help="default: 1,8 on CPU; 1,8,32,128 on GPU")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    p.add_argument("--mode", choices=("infer", "train"), default="infer",
                   help="train = forward + backward, no optimizer step (pycls's timing protocol)")
    p.add_argument("--budget", type=float, help="seconds for the whole sweep; configurations not reached are 'skipped'")
    p.add_argument("--memory-limit", type=float, dest="memory_limit", metavar="MIB",
                   help="host memory (RSS) at which a measuring child is killed and its record is 'oom'; "
                        "0 for none (default: 85%% of RAM on CPU, none on GPU)")
    p.add_argument("--repeats", type=int, help="processes per measurement (default: 1)")
    p.add_argument("--seconds-per-config", type=float, dest="seconds_per_config",
                   help="time budget of each measurement's timed phase (default: 2)")
    p.add_argument("--threads", type=int, help="CPU threads of every runner that takes them (ORT intra-op "
                                                 "threads, torch.set_num_threads; default: physical cores)")
    p.add_argument("--option", action="append", metavar="[RUNNER.]KEY=VALUE",
                   help="a runner option, repeatable: e.g. channels_last=1, torch:cuda.cuda_graphs=1, "
                        "ort:cpu.iobinding=1 (hwprofile devices lists each runner's)")
    from ..quality import DEFAULT_BACKOFF_S, DEFAULT_RETRIES

    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                   help=f"measure a disturbed record up to N more times, after a back-off (default: {DEFAULT_RETRIES})")
    p.add_argument("--retry-backoff", type=float, default=DEFAULT_BACKOFF_S, metavar="SECONDS", dest="retry_backoff",
                   help="first back-off before re-measuring, doubled each time; ends early once the machine is "
                        f"quiet (default: {DEFAULT_BACKOFF_S:g}; docs/measurement.md)")
    p.add_argument("--layers", nargs="?", type=int, const=20, default=0, metavar="N",
                   help="also time every record's layers (N profiled runs, default 20) and store the breakdown "
                        "in the profile; see hwprofile show --layers")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


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


def config_from_args(args: argparse.Namespace):
    """A SweepConfig from parsed options; unset options keep the library's defaults."""
    from ..errors import ConfigError
    import math

    from ..sweep_config import MAX_BATCH, SweepConfig

    kw: dict = {"device": args.device, "precision": args.precision, "mode": args.mode, "budget_s": args.budget,
                "retries": args.retries, "retry_backoff_s": args.retry_backoff}
    if getattr(args, "memory_limit", None) is not None:
        kw["memory_limit_mb"] = args.memory_limit
    if getattr(args, "layers", 0):
        if args.layers < 4:
            raise ConfigError(f"--layers {args.layers}: expected at least 4 profiled runs")
        kw["layers"] = args.layers
    if args.runners:
        kw["runners"] = tuple(csv_list(args.runners))
    if args.models:
        kw["models"] = tuple(csv_list(args.models))
    if args.strategies:
        kw["strategies"] = tuple(csv_list(args.strategies))
    if args.scales:
        kw["scales"] = tuple(float_list(args.scales, "--scales"))
    if args.batch_sizes:
        values = float_list(args.batch_sizes, "--batch-sizes")
        if any(not math.isfinite(v) or v != int(v) or not 1 <= v <= MAX_BATCH for v in values):
            raise ConfigError(f"--batch-sizes {args.batch_sizes!r}: expected integers from 1 to {MAX_BATCH}")
        kw["batch_sizes"] = tuple(int(v) for v in values)
    timing = {}
    if args.repeats is not None:
        if args.repeats < 1:
            raise ConfigError("--repeats must be >= 1")
        timing["repeats"] = args.repeats
    if args.seconds_per_config is not None:
        if not args.seconds_per_config > 0:
            raise ConfigError("--seconds-per-config must be > 0")
        timing["budget_s"] = args.seconds_per_config
    if timing:
        kw["timing"] = timing
    options = runner_options(args.option or [], args.threads)
    if options:
        kw["options"] = options
    return SweepConfig(**kw)


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}.get(text.lower(), text)


def runner_options(items: list[str], threads: int | None = None) -> dict:
    """``[RUNNER.]KEY=VALUE`` strings (and ``--threads``) as SweepConfig.options."""
    from ..errors import ConfigError
    from ..runners import check_runner_name

    out: dict[str, dict] = {}
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads {threads}: expected an integer >= 1")
        out["*"] = {"threads": threads}
    for item in items:
        target, eq, value = item.partition("=")
        runner, dot, key = target.rpartition(".")
        if not eq or not key or not value:
            raise ConfigError(f"--option {item!r}: expected [RUNNER.]KEY=VALUE, e.g. channels_last=1 or "
                              "ort:cpu.iobinding=1")
        mine = out.setdefault(check_runner_name(runner) if dot else "*", {})
        if key in mine and mine[key] != _value(value):
            raise ConfigError(f"--option {item!r} contradicts an earlier {key}={mine[key]!r} (or --threads)")
        mine[key] = _value(value)
    return out


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ._report import payload, tables
    from ..sweep import run_sweep

    if args.resume and args.out and args.out != args.resume:
        raise ConfigError("--out and --resume name different files; --resume FILE continues FILE in place")
    if args.remeasure and not args.resume:
        raise ConfigError("--remeasure re-measures records of a saved profile: give it with --resume FILE")
    config = config_from_args(args)
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
            from ..executors.ray import run_ray

            profile, path, notes = run_ray(config, out, resume=bool(args.resume), quiet=args.quiet,
                                           address=args.ray_address, accelerator=args.accelerator,
                                           shared_cache=args.shared_cache, remeasure=args.remeasure)
        else:
            profile, path, notes = run_sweep(config, out, resume=bool(args.resume), quiet=args.quiet,
                                             remeasure=args.remeasure)
    except KeyboardInterrupt:
        sys.stderr.write("hwprofile: interrupted; the profile so far is saved: continue with --resume FILE\n")
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
    from ..quality import summary_line
    from ..roofline import summary_lines

    for line in summary_lines(profile) + [summary_line(profile.records, path)]:
        sys.stderr.write(line + "\n")  # the quality line is the last one
    return 0


def show_plan(config, fmt: str) -> int:
    """``run --plan``: the items, the artifacts to make and the estimated wall time; measures nothing."""
    from ..sweep_plan import make_plan
    from ._output import Column, Table, num

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
    import dataclasses
    from pathlib import Path

    from ..profile import Profile
    from .check import RUN_DEFAULTS, _sweep_config_of

    if any(getattr(args, k) != v for k, v in RUN_DEFAULTS.items()) or not Path(args.resume).is_file():
        return config
    saved = _sweep_config_of(Profile.load(args.resume))
    return dataclasses.replace(saved, retries=config.retries, retry_backoff_s=config.retry_backoff_s)
