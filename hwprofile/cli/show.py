"""``hwprofile show FILE``: the tables of a saved profile."""

from __future__ import annotations

import argparse

from hwprofile.analysis import growth, unavailable_layers
from hwprofile.cli._output import Column, Table, add_format_args, emit, factor, num, si, view_of
from hwprofile.cli._report import report
from hwprofile.errors import ConfigError
from hwprofile.profile import Profile


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print a saved profile's tables")
    p.add_argument("profile", help="profile JSON written by hwprofile run")
    p.add_argument("--layers", action="store_true", help="per strategy, how the memory-bound share of layer "
                                                         "time grows with s (records made with run --layers)")
    add_format_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    profile = Profile.load(args.profile)
    if args.layers:
        return _layers(profile, args)
    report(profile, view_of(args), args.profile)  # the answer first, then the tables
    return 0


def _layers(profile, args) -> int:
    rows = growth(profile)
    missing = unavailable_layers(profile)
    if not rows:
        why = f"; {len(missing)} could not be measured ({missing[0]})" if missing else ""
        raise ConfigError(f"{args.profile}: no record has a layer breakdown{why} (measure with hwprofile run "
                          "--layers)")
    pct = (lambda v: "-" if v is None else f"{v:.0%}")
    cols = (Column("strategy", "strategy"), Column("scale", "s", factor), Column("flops", "flops", si),
            Column("acts", "acts", si), Column("latency_ms", "ms", num),
            Column("memory_bound_time_fraction", "memory-bound time", pct))
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["model"], r["runner"], r["batch"]), []).append(r)
    notes = tuple(f"no per-layer times: {text}" for text in missing)
    tables = [Table(f"{m} on {rn}, batch {b}: memory-bound share of layer time by strategy and s", cols, g,
                    notes=notes) for (m, rn, b), g in groups.items()]
    emit(tables, view_of(args), rows)
    return 0
