"""``hwprofile models``: the zoo with its counts."""

from __future__ import annotations

import argparse

from hwprofile.cli._output import Column, Table, add_format_args, emit, si, view_of
from hwprofile.zoo import complexity, zoo

COLUMNS = (Column("model", "model"), Column("family", "family"),
           Column("resolution", "res"), Column("test_resolution", "test res"),
           Column("flops", "flops (MACs)", si), Column("params", "params", si), Column("acts", "acts", si))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model zoo with flops (multiply-adds), params and acts")
    add_format_args(p)
    p.set_defaults(handler=run)


def rows() -> list[dict]:
    out = []
    for name, spec in zoo().items():
        cx = complexity(spec)
        out.append({"model": name, "family": spec.family, "resolution": spec.train_res,
                    "test_resolution": spec.test_res, "flops": cx.flops, "params": cx.params, "acts": cx.acts})
    return out


def run(args: argparse.Namespace) -> int:
    data = rows()
    note = "flops are multiply-adds per image at the training resolution (pycls's convention)"
    emit([Table("Model zoo", COLUMNS, data, notes=(note,))], view_of(args),
         {"flops_unit": "multiply-adds", "models": data})
    return 0
