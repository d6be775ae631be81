"""``hwprofile select FILE --model M --max-latency-ms X``: scalings that fit a budget on a device."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..predict import DEFAULT_SELECT_SCALES, select
from ..profile import Profile
from ..scaling import PAPER_STRATEGIES, check_scale
from ..zoo import get_spec
from ._common import csv_list, float_list, int_in
from ._output import Column, Table, add_format_args, emit, factor, num, si, view_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="list the strategies and scales of a model that fit a latency budget")
    p.add_argument("profile")
    p.add_argument("--model", required=True)
    p.add_argument("--max-latency-ms", type=float, required=True)
    p.add_argument("--max-memory-mb", type=float)
    p.add_argument("--runner")
    p.add_argument("--batch", type=int_in(1, 1 << 20, "--batch"))
    p.add_argument("--strategies", help="default: d,w,r,dw,dr,wr,dwr,dWr")
    p.add_argument("--scales", help="default: 1,1.5,2,3,4,6,8,12,16")
    p.add_argument("--top", type=int_in(1, 1 << 30, "--top"), default=20,
                   help="rows per runner and batch, >= 1 (default 20)")
    add_format_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.max_latency_ms > 0 or (args.max_memory_mb is not None and not args.max_memory_mb > 0):
        raise ConfigError("--max-latency-ms and --max-memory-mb must be > 0")
    profile = Profile.load(args.profile)
    get_spec(args.model)
    strategies = csv_list(args.strategies) if args.strategies else list(PAPER_STRATEGIES)
    scales = [check_scale(s) for s in float_list(args.scales, "--scales")] if args.scales else DEFAULT_SELECT_SCALES
    rows = select(profile, args.model, args.max_latency_ms, max_memory_mb=args.max_memory_mb, runner=args.runner,
                  batch=args.batch, strategies=strategies, scales=scales)
    shown: list[dict] = []
    counts: dict[tuple, int] = {}
    for r in rows:
        k = (r["runner"], r["batch"])
        counts[k] = counts.get(k, 0) + 1
        if counts[k] <= args.top:
            shown.append(r)
    table = Table(f"Scalings of {args.model} predicted within {args.max_latency_ms:g} ms"
                  + (f" and {args.max_memory_mb:g} MB" if args.max_memory_mb else "") + ", largest flops first", (
        Column("runner", "runner"), Column("batch", "batch"), Column("strategy", "strategy"),
        Column("scale", "s", factor), Column("resolution", "res"), Column("flops", "flops", si),
        Column("acts", "acts", si), Column("predicted_ms", "predicted ms", num),
        Column("predicted_memory_mb", "predicted MB", num), Column("loo_error_pct", "LOO error %", num)), shown,
        notes=("flops are multiply-adds per image; predictions come from the profile's per-device runtime model",)
        if shown else ("nothing fits: every candidate is predicted over budget",))
    emit([table], view_of(args), rows)
    return 0
