"""``hwprofile complexity FILE.onnx``: counts of any ONNX graph, per image, like a zoo model's."""

from __future__ import annotations

import argparse

from hwprofile.cli._output import Column, Table, emit, si, view_of
from hwprofile.errors import ConfigError
from hwprofile.graph import count_onnx

#: Keys of the zoo record that mean nothing for a file: always null here.
_NULL_KEYS = ("strategy", "scale", "test_resolution", "depths", "widths", "group_widths", "stem_width",
              "head_width", "flops_ratio", "params_ratio", "acts_ratio", "stages")


def run_onnx(args: argparse.Namespace) -> int:
    if args.strategy is not None or args.scale is not None:
        raise ConfigError("--strategy/--scale apply to zoo models; export the scaled model first "
                          "(hwprofile export MODEL --strategy S --scale F -o FILE.onnx)")
    cx = count_onnx(args.model, batch=args.batch, by_node=args.by_node)
    rec = {"model": cx.model, "name": cx.model, **{k: None for k in _NULL_KEYS},
           "resolution": cx.resolution, "flops": cx.flops, "params": cx.params, "acts": cx.acts,
           "flops_unit": "multiply-adds", "batch": cx.batch, "input_name": cx.input_name,
           "input_shape": list(cx.input_shape), "opset": cx.opset, "uncounted": cx.uncounted,
           "folded_bn_params_added": cx.folded_bn_params_added, "hwprofile_spec": cx.spec["name"] if cx.spec else None}
    if args.by_node:
        rec["nodes"] = [n.to_dict() for n in cx.nodes]
    emit(_tables(rec), view_of(args), rec)
    return 0


def _tables(rec: dict) -> list[Table]:
    notes = []
    if rec["uncounted"]:
        ops = ", ".join(f"{op} x{n}" for op, n in rec["uncounted"].items())
        notes.append(f"NOT counted (no rule for these ops; totals exclude them): {ops}")
    if rec["folded_bn_params_added"]:
        notes.append(f"includes {rec['folded_bn_params_added']} params of BatchNorms folded by hwprofile's export")
    shape = "x".join(str(d) for d in rec["input_shape"])
    title = f"{rec['model']} at {shape} (flops are multiply-adds, per image)"
    tables = [Table(title, (Column("flops", "flops", si), Column("params", "params", si),
                            Column("acts", "acts", si), Column("resolution", "resolution"),
                            Column("opset", "opset")), [rec], notes=tuple(notes))]
    if "nodes" in rec:
        cols = (Column("name", "node"), Column("op_type", "op"), Column("kind", "counted"),
                Column("output_shape", "output"), Column("flops", "flops", si), Column("params", "params", si),
                Column("acts", "acts", si))
        tables.append(Table("Per node", cols, rec["nodes"]))
    return tables
