"""``hwprofile complexity MODEL``: counts of a zoo (or scaled) model, per image."""

from __future__ import annotations

import argparse

from hwprofile.cli._output import Column, Table, add_format_args, emit, ratio, si, view_of
from hwprofile.cli.complexity_onnx import run_onnx
from hwprofile.errors import ConfigError
from hwprofile.zoo import ModelSpec, check_scale, complexity, resolve


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("complexity", help="flops (multiply-adds), params and acts of a model")
    p.add_argument("model", help="zoo name (case-insensitive) or an .onnx file")
    p.add_argument("--strategy", help="scaling strategy: d w r dw dr wr dwr dWr, alpha:A or a pycls type")
    p.add_argument("--scale", type=str, default=None, help="flops scale factor s (default 1)")
    p.add_argument("--batch", type=int, default=None, help="(ONNX files) batch size for shape inference")
    p.add_argument("--by-node", action="store_true", help="(ONNX files) per-node breakdown")
    add_format_args(p)
    p.set_defaults(handler=run)


def spec_record(spec: ModelSpec, base: ModelSpec) -> dict:
    """The JSON record of a spec's complexity, with ratios to its base model."""
    cx, bx = complexity(spec), complexity(base)
    return {
        "model": spec.base or spec.name, "name": spec.name, "strategy": spec.strategy,
        "scale": spec.scale, "resolution": spec.train_res, "test_resolution": spec.test_res,
        "depths": list(spec.depths), "widths": list(spec.widths), "group_widths": list(spec.group_widths),
        "stem_width": spec.stem_w, "head_width": spec.head_w,
        "flops": cx.flops, "params": cx.params, "acts": cx.acts, "flops_unit": "multiply-adds",
        "flops_ratio": cx.flops / bx.flops, "params_ratio": cx.params / bx.params,
        "acts_ratio": cx.acts / bx.acts,
        "stages": [vars(s) for s in cx.stages],
    }


def _scale_arg(text: str | None) -> float:
    return 1.0 if text is None else check_scale(text)


def run(args: argparse.Namespace) -> int:
    if args.model.lower().endswith(".onnx"):
        return run_onnx(args)
    if args.scale is not None and args.strategy is None:
        raise ConfigError("--scale needs --strategy (e.g. --strategy dWr --scale 4)")
    base = resolve(args.model)
    spec = resolve(args.model, args.strategy, _scale_arg(args.scale)) if args.strategy else base
    rec = spec_record(spec, base)
    summary = Table(f"{spec.name} at {spec.train_res}x{spec.train_res} (flops are multiply-adds, per image)", (
        Column("flops", "flops", si), Column("params", "params", si), Column("acts", "acts", si),
        Column("flops_ratio", "flops ratio", ratio), Column("acts_ratio", "acts ratio", ratio),
        Column("depths", "depths"), Column("widths", "widths"), Column("group_widths", "group widths")), [rec])
    stages = Table("Per stage", (Column("name", "part"), Column("out_channels", "channels"),
                                 Column("out_size", "out size"), Column("flops", "flops", si),
                                 Column("params", "params", si), Column("acts", "acts", si)), rec["stages"])
    emit([summary, stages], view_of(args), rec)
    return 0
