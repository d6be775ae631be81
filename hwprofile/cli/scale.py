"""``hwprofile scale MODEL``: how flops, params and acts grow under each strategy."""

from __future__ import annotations

import argparse
import math
from typing import Any

from hwprofile.analysis import growth_exponent
from hwprofile.cli._common import csv_list, float_list
from hwprofile.cli._output import Column, Table, add_format_args, emit, factor, num, ratio, si, view_of
from hwprofile.zoo import check_scale, complexity, get_spec, scale, scaling_factors

DEFAULT_STRATEGIES = "d,w,r,dw,dr,wr,dwr,dWr"
DEFAULT_SCALES = "1,2,4,16"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="scale a model by several strategies and fit growth exponents")
    p.add_argument("model", help="zoo name (case-insensitive)")
    p.add_argument("--strategies", default=DEFAULT_STRATEGIES, help=f"default: {DEFAULT_STRATEGIES}")
    p.add_argument("--scales", default=DEFAULT_SCALES, help=f"flops factors s (default: {DEFAULT_SCALES})")
    add_format_args(p)
    p.set_defaults(handler=run)


def theory_exponents(strategy: str) -> tuple[float, float]:
    """(params, acts) exponents of a dense conv net: d^1 w^2 and d^1 w^1 r^2."""
    f = scaling_factors(strategy, math.e)
    e_d, e_w, e_r = math.log(f.d), math.log(f.w), math.log(f.r)
    return e_d + 2 * e_w, e_d + e_w + 2 * e_r


def sweep(model: str, strategies: list[str], scales: list[float]) -> tuple[list[dict], list[dict]]:
    """Rows for every (strategy, s) and one fitted-exponent row per strategy."""
    base = get_spec(model)
    bx = complexity(base)
    rows, fits = [], []
    for strategy in strategies:
        group: list[dict[str, Any]] = []
        for s in scales:
            spec = scale(base, strategy, s)
            cx = complexity(spec)
            group.append({"model": base.name, "strategy": strategy, "scale": s, "resolution": spec.train_res,
                          "depths": list(spec.depths), "widths": list(spec.widths),
                          "group_widths": list(spec.group_widths),
                          "flops": cx.flops, "params": cx.params, "acts": cx.acts,
                          "flops_ratio": cx.flops / bx.flops, "params_ratio": cx.params / bx.params,
                          "acts_ratio": cx.acts / bx.acts})
        rows += group
        fx = [r["flops_ratio"] for r in group]
        tp, ta = theory_exponents(strategy)
        fits.append({"strategy": strategy,
                     "params_exponent": growth_exponent(fx, [r["params_ratio"] for r in group]),
                     "acts_exponent": growth_exponent(fx, [r["acts_ratio"] for r in group]),
                     "params_exponent_theory": tp, "acts_exponent_theory": ta})
    return rows, fits


def run(args: argparse.Namespace) -> int:
    strategies = csv_list(args.strategies)
    scales = [check_scale(s) for s in float_list(args.scales, "--scales")]
    rows, fits = sweep(args.model, strategies, scales)
    name = get_spec(args.model).name
    t1 = Table(f"{name} scaled (flops are multiply-adds; ratios are to the base model)", (
        Column("strategy", "strategy"), Column("scale", "s", factor), Column("resolution", "res"),
        Column("flops", "flops", si), Column("params", "params", si), Column("acts", "acts", si),
        Column("flops_ratio", "flops ratio", ratio), Column("params_ratio", "params ratio", ratio),
        Column("acts_ratio", "acts ratio", ratio)), rows)
    t2 = Table("Growth exponents against the achieved flops ratio (x ~ flops^e)", (
        Column("strategy", "strategy"), Column("params_exponent", "params e", num),
        Column("acts_exponent", "acts e", num), Column("params_exponent_theory", "params e (dense theory)", num),
        Column("acts_exponent_theory", "acts e (dense theory)", num)), fits,
        notes=("theory: a dense conv net with d, w, r scaled by the strategy's exponents (science: "
               "w gives acts ~ s^0.5, dWr ~ s^0.6, d and r ~ s); depthwise and grouped convs deviate",))
    emit([t1, t2], view_of(args), {"model": name, "flops_unit": "multiply-adds", "rows": rows, "exponents": fits})
    return 0
