"""``hwprofile plot FILE --out DIR``: latency against flops and acts, log-log, per runner and batch."""

from __future__ import annotations

import argparse
import sys

from hwprofile.analysis import plot_profile, plot_roofline
from hwprofile.profile import Profile


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plot latency against flops and acts, or a per-layer roofline (needs "
                                    "matplotlib: the [plot] extra)")
    p.add_argument("profile", help="a profile, or with --roofline a profile made with run --layers or a "
                                   "hwprofile layers --out file")
    p.add_argument("--roofline", action="store_true", help="each layer as a point (intensity vs achieved "
                                                           "FLOP/s) under the device's roofs, one figure per "
                                                           "model and runner")
    p.add_argument("--out", required=True, help="folder for the PNG files")
    p.add_argument("--force", action="store_true", help="replace plots already in --out")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.roofline:
        for path in plot_roofline(args.profile, args.out):
            sys.stdout.write(f"{path}\n")
        return 0
    profile = Profile.load(args.profile)
    for path in plot_profile(profile, args.out, replace=args.force):
        sys.stdout.write(f"{path}\n")
    return 0
