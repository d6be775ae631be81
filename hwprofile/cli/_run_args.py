"""The sweep options of ``hwprofile run``, shared with ``hwprofile check``: arguments -> SweepConfig."""

from __future__ import annotations

import argparse

from hwprofile import bounds
from hwprofile.cli._common import csv_list, float_list
from hwprofile.errors import ConfigError
from hwprofile.profile import DEFAULT_BACKOFF_S, DEFAULT_RETRIES
from hwprofile.runners import check_runner_name
from hwprofile.sweep import ORDERS, SweepConfig, validate
from hwprofile.vocabulary import MODES, PRECISIONS

#: the parsed sweep options and their defaults: an option differs from its default when given
RUN_DEFAULTS = {"device": "auto", "runners": None, "models": None, "strategies": None, "scales": None,
                "batch_sizes": None, "precision": "fp32", "mode": "infer", "budget": None, "repeats": None,
                "seconds_per_config": None, "threads": None, "option": None, "memory_limit": None,
                "warmup": None, "iterations": None}


def run_options_given(args: argparse.Namespace) -> list[str]:
    """The sweep options given on the command line (as ``--flag``s)."""
    return [f"--{k.replace('_', '-')}" for k, v in RUN_DEFAULTS.items() if getattr(args, k) != v]


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The sweep options, shared with ``hwprofile check``."""
    p.add_argument("--device", default="auto", help="auto | cpu | cuda:N (default: auto); for run --executor ray "
                                                     "also a device kind, or all: every kind of the cluster")
    p.add_argument("--runners", help="comma-separated, e.g. torch:cpu,ort:cpu (default: all available)")
    p.add_argument("--models", help="zoo names or .onnx files (default: EfficientNet-B0)")
    p.add_argument("--strategies", help="default: w,r,dWr")
    p.add_argument("--scales", help="flops factors (default: 1,4,16)")
    p.add_argument("--batch-sizes", help="default: 1,8 on CPU; 1,8,32,128 on GPU")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--mode", choices=MODES, default="infer",
                   help="train = forward + backward, no optimizer step (pycls's timing protocol)")
    p.add_argument("--budget", type=float, help="seconds for the whole sweep; configurations not reached are 'skipped'")
    p.add_argument("--memory-limit", type=float, dest="memory_limit", metavar="MIB",
                   help="host memory (RSS) at which a measuring child is killed and its record is 'oom'; "
                        "0 for none (default: 85%% of RAM on CPU, none on GPU)")
    p.add_argument("--repeats", type=int, help="processes per measurement (default: 1)")
    p.add_argument("--seconds-per-config", type=float, dest="seconds_per_config",
                   help="time budget of each measurement's timed phase (default: 2)")
    p.add_argument("--warmup", type=bounds.arg("warmup_iterations", "--warmup"), metavar="N",
                   help="exactly N untimed runs before timing, per process (timm's --num-warm-iter; not "
                        "trtexec's --warmUp, which is milliseconds); default: 10 runs and at least 0.2 s")
    p.add_argument("--iterations", type=bounds.arg("fixed_iterations", "--iterations"), metavar="N",
                   help="exactly N timed runs per process, no adaptive stop and no time budget (timm's "
                        "--num-bench-iter; trtexec's --iterations is a minimum); default: until the median's "
                        "95%% interval is within 1%%, or --seconds-per-config is spent")
    p.add_argument("--threads", type=int, help="CPU threads of every runner that takes them (ORT intra-op "
                                                 "threads, torch.set_num_threads; default: physical cores)")
    p.add_argument("--option", action="append", metavar="[RUNNER.]KEY=VALUE",
                   help="a runner option, repeatable: e.g. channels_last=1, torch:cuda.cuda_graphs=1, "
                        "ort:cpu.iobinding=1 (hwprofile devices lists each runner's)")
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="N",
                   help=f"measure a disturbed record up to N more times, after a back-off (default: {DEFAULT_RETRIES})")
    p.add_argument("--retry-backoff", type=float, default=DEFAULT_BACKOFF_S, metavar="SECONDS", dest="retry_backoff",
                   help="first back-off before re-measuring, doubled each time; ends early once the machine is "
                        f"quiet (default: {DEFAULT_BACKOFF_S:g}; docs/measurement.md)")
    p.add_argument("--layers", nargs="?", type=int, const=20, default=None, metavar="N",
                   help="also time every record's layers (N profiled runs, default 20) and store the breakdown "
                        "in the profile; see hwprofile show --layers")
    p.add_argument("--order", choices=ORDERS, default="shuffled",
                   help="shuffled: measure in a seeded random order, so drift does not line up with scale "
                        "(default); planned: model by model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace, local: bool = True):
    """A SweepConfig from parsed options, checked (hwprofile.sweep.validate: types, hwprofile.bounds,
    with the flags' names) before anything runs; unset options keep the library's defaults. ``local``: the
    sweep measures on this machine (its cores bound ``--threads``)."""
    kw: dict = {"device": args.device, "precision": args.precision, "mode": args.mode, "budget_s": args.budget,
                "retries": args.retries, "retry_backoff_s": args.retry_backoff}
    if getattr(args, "order", "shuffled") != "shuffled":
        kw["order"] = args.order
    if getattr(args, "memory_limit", None) is not None:
        kw["memory_limit_mb"] = args.memory_limit
    if getattr(args, "layers", None) is not None:  # given: 0 is refused like any value out of bounds
        kw["layers"] = bounds.check("layer_runs", args.layers, "--layers")
    if args.runners:
        kw["runners"] = tuple(csv_list(args.runners))
    if args.models:
        kw["models"] = tuple(csv_list(args.models))
    if args.strategies:
        kw["strategies"] = tuple(csv_list(args.strategies))
    if args.scales:
        kw["scales"] = tuple(float_list(args.scales, "--scales"))
    given = [f for f, v in (("--strategies", args.strategies), ("--scales", args.scales)) if v]
    if given and kw.get("models") and all(m.lower().endswith(".onnx") for m in kw["models"]):
        raise ConfigError(f"{' and '.join(given)} apply to zoo models; .onnx files are measured as they are "
                          "(export a scaled model first: hwprofile export MODEL --strategy S --scale F -o FILE.onnx)")
    if args.batch_sizes:
        kw["batch_sizes"] = tuple(bounds.check("batch", v, "--batch-sizes")
                                  for v in float_list(args.batch_sizes, "--batch-sizes"))
    timing = {}
    if args.repeats is not None:
        timing["repeats"] = bounds.check("repeats", args.repeats, "--repeats")
    if args.seconds_per_config is not None:
        if getattr(args, "iterations", None) is not None:
            raise ConfigError("--seconds-per-config budgets the adaptive timing; --iterations N times exactly N "
                              "runs: give one of them")
        timing["budget_s"] = bounds.check("seconds_per_config", args.seconds_per_config, "--seconds-per-config")
    if getattr(args, "warmup", None) is not None:
        timing.update(warmup_iters=args.warmup, warmup_s=0.0)  # a count, not a time
    if getattr(args, "iterations", None) is not None:
        timing["iterations"] = args.iterations
    if timing:
        kw["timing"] = timing
    options = runner_options(args.option or [], args.threads)
    if options:
        kw["options"] = options
    config = SweepConfig(**kw)
    validate(config, local=local)
    return config


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}.get(text.lower(), text)


def runner_options(items: list[str], threads: int | None = None) -> dict:
    """``[RUNNER.]KEY=VALUE`` strings (and ``--threads``) as SweepConfig.options."""
    out: dict[str, dict] = {}
    if threads is not None:  # bounded by the cores of the machine that measures (sweep_config.validate)
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
