"""``hwprofile show FILE``: the tables of a saved profile."""

from __future__ import annotations

import argparse

from ._output import add_format_args, emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print a saved profile's tables")
    p.add_argument("profile", help="profile JSON written by hwprofile run")
    add_format_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..profile import Profile
    from ..report import payload, tables

    profile = Profile.load(args.profile)
    emit(tables(profile), args.format, payload(profile))
    return 0
