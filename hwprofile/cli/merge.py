"""``hwprofile merge A.json B.json [...] -o OUT.json``: one profile holding several devices."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ConfigError
from ..merge import PREFER, merge
from ..profile import Profile
from ._output import ALWAYS, Column, Table, add_format_args, emit, view_of


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
    rows = [{"device_id": d, "records": sum(r.device_id == d for r in result.profile.records),
             "ok": sum(r.device_id == d and r.ok for r in result.profile.records),
             "from": ", ".join(dict.fromkeys(src))} for d, src in result.sources.items()]
    table = Table(f"Merged into {args.out}", (Column("device_id", "device", priority=ALWAYS),
                                              Column("records", "records", priority=ALWAYS), Column("ok", "ok"),
                                              Column("from", "from")), rows, notes=result.notes, name="merged")
    emit([table], view_of(args), {"out": args.out, "devices": rows, "notes": list(result.notes)})
    sys.stderr.write(f"saved {args.out} ({len(result.profile.records)} records, {len(rows)} devices)\n")
    return 0
