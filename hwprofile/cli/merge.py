"""``hwprofile merge A.json B.json [...] -o OUT.json``: one profile holding several devices."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hwprofile.analysis import left_out_counts, usable
from hwprofile.cli._output import ALWAYS, Column, Table, add_format_args, emit, view_of
from hwprofile.errors import ConfigError
from hwprofile.profile import Profile
from hwprofile.report import PREFER, merge


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="join profiles from several machines into one file")
    p.add_argument("profiles", nargs="+", help="profile JSON files (at least two)")
    p.add_argument("-o", "--out", required=True, help="file to write; never overwritten unless --force")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--prefer", choices=PREFER,
                   help="resolve records (and fingerprints) that differ for the same identity: newer keeps the "
                        "later measurement; cleaner keeps the record of better quality (clean, noisy, disturbed; "
                        "the newer of equals) and the newer fingerprint")
    add_format_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if os.path.lexists(out) and not args.force:
        raise ConfigError(f"{args.out!r} already exists; merge never overwrites a file: choose another -o")
    result = merge([(p, Profile.load(p)) for p in args.profiles], prefer=args.prefer)
    result.profile.save(out, replace=args.force)
    rows = []
    for d, src in result.sources.items():
        mine = [r for r in result.profile.records if r.device_id == d]
        split = usable(mine)
        rows.append({"device_id": d, "records": len(mine), "ok": sum(r.ok for r in mine), "used": len(split.used),
                     "left_out": len(split.excluded), "left_out_kinds": left_out_counts(split.excluded),
                     "left_out_text": _kinds(left_out_counts(split.excluded)),
                     "from": ", ".join(dict.fromkeys(src))})
    notes = [*result.notes, "used: records every reader uses (clean or noisy, with a latency and counts); left out: "
                            "disturbed, not ok, or without a latency or counts (docs/measurement.md)"]
    table = Table(f"Merged into {args.out}", (Column("device_id", "device", priority=ALWAYS),
                                              Column("records", "records", priority=ALWAYS),
                                              Column("used", "used", priority=ALWAYS),
                                              Column("left_out_text", "left out", priority=1),
                                              Column("from", "from")), rows, notes=tuple(notes), name="merged")
    emit([table], view_of(args), {"out": args.out, "devices": rows, "notes": list(result.notes)})
    sys.stderr.write(f"saved {args.out} ({len(result.profile.records)} records, {len(rows)} devices)\n")
    return 0


def _kinds(value: dict | None) -> str:
    """``2 (1 disturbed, 1 failed)``, or ``0``."""
    if not value:
        return "0"
    return f"{sum(value.values())} (" + ", ".join(f"{n} {k}" for k, n in value.items()) + ")"
