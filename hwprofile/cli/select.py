"""``hwprofile select FILE --model M --max-latency-ms X``: scalings that fit a budget on a device."""

from __future__ import annotations

import argparse

from hwprofile.analysis import DEFAULT_SELECT_SCALES, LOO_LIMIT_PCT, select
from hwprofile.cli._caveats import caveats_cell, select_notes, warn_on_stderr
from hwprofile.cli._common import csv_list, float_list, int_in
from hwprofile.cli._output import ALWAYS, Column, Table, add_format_args, emit, factor, num, si, view_of
from hwprofile.errors import ConfigError
from hwprofile.profile import Profile
from hwprofile.zoo import PAPER_STRATEGIES, check_scale, get_spec


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
    p.add_argument("--trusted-only", action="store_true", dest="trusted_only",
                   help="leave out every candidate with a caveat: outside the measured range of flops and acts, of "
                        f"another model family, or predicted by a fit whose leave-one-out error is above "
                        f"{LOO_LIMIT_PCT:g}%%")
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
    dropped = [r for r in rows if r["caveats"]] if args.trusted_only else []
    rows = [r for r in rows if not (args.trusted_only and r["caveats"])]
    shown: list[dict] = []
    counts: dict[tuple, int] = {}
    for r in rows:
        k = (r["runner"], r["batch"])
        counts[k] = counts.get(k, 0) + 1
        if counts[k] <= args.top:
            shown.append(r)
    warnings = select_notes(shown)
    notes = [*warnings] if shown else ["nothing fits: every candidate is predicted over budget"
                                       + (" or has a caveat (--trusted-only)" if dropped else "")]
    if dropped:
        notes.append(f"--trusted-only left out {len(dropped)} candidates with caveats")
    beyond = [r for r in rows if not any(r is s for s in shown)]
    if beyond:
        flagged = sum(1 for r in beyond if r["caveats"])
        notes.append(f"{len(beyond)} more candidates fit beyond --top {args.top} per runner and batch"
                     + (f" ({flagged} of them with caveats)" if flagged else "") + ": --top N shows them, --json "
                     "lists every one")
    if shown:
        notes.append("flops are multiply-adds per image; predictions come from the profile's per-device runtime "
                     "model over its usable records (clean and noisy); LOO error: the median leave-one-out error "
                     "of the fit that answered")
    table = Table(f"Scalings of {args.model} predicted within {args.max_latency_ms:g} ms"
                  + (f" and {args.max_memory_mb:g} MB" if args.max_memory_mb else "")
                  + ", largest flops first (those without caveats before those with)", (
        Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
        Column("strategy", "strategy", priority=ALWAYS), Column("scale", "s", factor, priority=ALWAYS),
        Column("resolution", "res", priority=3), Column("flops", "flops", si, priority=1),
        Column("acts", "acts", si, priority=2), Column("predicted_ms", "predicted ms", num, priority=ALWAYS),
        Column("predicted_memory_mb", "predicted MB", num, priority=3),
        Column("loo_error_pct", "LOO error %", num, priority=1),
        Column("caveat", "caveats", caveats_cell, priority=ALWAYS, wrap=24)), shown, notes=tuple(notes),
        name="select")
    view = view_of(args)
    warn_on_stderr(warnings, view)
    emit([table], view, rows)
    return 0
