"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from hwprofile.errors import ConfigError


def csv_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items are an error)."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise ConfigError(f"expected a comma-separated list, got {text!r}")
    return items


def float_list(text: str, what: str) -> list[float]:
    values = []
    for item in csv_list(text):
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(f"{what}: {item!r} is not a number; expected e.g. 1,2,4") from None
    return values


def int_in(lo: int, hi: int, what: str):
    """An argparse ``type``: an integer in [lo, hi] (one-line error otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {text!r}: expected an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} {value}: expected an integer from {lo} to {hi}")
        return value

    return parse


#: bootstrap seeds: what numpy's default generator accepts as one 32-bit word
seed_arg = int_in(0, 2**32 - 1, "--seed")


class Deferred:
    """A subcommand's handler loaded when it is called, from ``hwprofile.cli.<module>``: the command's parser
    stays light, so bad arguments are refused before the science, the runners or the exporters load."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, args: argparse.Namespace) -> Any:
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.name)(args)
