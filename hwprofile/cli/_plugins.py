"""``--runner-plugin``: runners of the user's own, for ``run`` and ``devices`` (kept apart from the light helpers
of ``_common``, which every command's parser loads)."""

from __future__ import annotations

import argparse

from hwprofile.runners import register_plugin


def add_plugin_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runner-plugin", action="append", metavar="NAME=MODULE:CLASS", dest="runner_plugin",
                   help="also offer a runner of your own, repeatable: a hwprofile.runners.Runner subclass "
                        "importable here (on a Ray cluster it is shipped to the nodes); then name it in "
                        "--runners (docs/fleet.md)")

def register_plugins(args: argparse.Namespace) -> None:
    for text in getattr(args, "runner_plugin", None) or []:
        register_plugin(text)
