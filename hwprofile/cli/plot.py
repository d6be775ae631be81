"""``hwprofile plot FILE --out DIR``: latency against flops and acts, log-log, per runner and batch."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plot latency against flops and acts (needs matplotlib: the [plot] extra)")
    p.add_argument("profile")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.add_argument("--force", action="store_true", help="replace plots already in --out")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..plot import plot_profile
    from ..profile import Profile

    profile = Profile.load(args.profile)
    for path in plot_profile(profile, args.out, replace=args.force):
        sys.stdout.write(f"{path}\n")
    return 0
