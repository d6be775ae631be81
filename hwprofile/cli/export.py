"""``hwprofile export MODEL -o FILE.onnx``: a zoo or scaled model as a verified ONNX graph."""

from __future__ import annotations

import argparse

from exporters import to_onnx
from hwprofile.cli._output import Column, Table, add_format_args, emit, num, view_of
from hwprofile.errors import ConfigError
from hwprofile.zoo import check_scale, resolve


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a zoo or scaled model to ONNX, checked against PyTorch on ONNX Runtime")
    p.add_argument("model", help="zoo name (case-insensitive)")
    p.add_argument("--strategy", help="scaling strategy: d w r dw dr wr dwr dWr, alpha:A or a pycls type")
    p.add_argument("--scale", type=str, default=None, help="flops scale factor s (default 1)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="where to write the graph")
    p.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--fp16", action="store_true", help="export an fp16 graph (fp16 input and output)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 20; 7-23)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch comparison")
    p.add_argument("--force", action="store_true", help="replace FILE.onnx if it exists")
    p.add_argument("--cache-dir", default=None, help="export cache (default $HWPROFILE_CACHE/onnx or "
                                                     "~/.cache/hwprofile/onnx)")
    add_format_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.scale is not None and args.strategy is None:
        raise ConfigError("--scale needs --strategy (e.g. --strategy dWr --scale 4)")
    scale = 1.0 if args.scale is None else check_scale(args.scale)
    spec = resolve(args.model, args.strategy, scale) if args.strategy else resolve(args.model)
    art = to_onnx(spec, args.output, batch=args.batch, fp16=args.fp16, opset=args.opset, cache_dir=args.cache_dir,
                  verify=not args.no_verify, overwrite=args.force)
    rec = art.to_dict()
    emit(_tables(rec), view_of(args), rec)
    return 0


def _tables(rec: dict) -> list[Table]:
    shape = "x".join(str(d) for d in rec["input_shape"])
    rows = [
        {"field": "file", "value": rec["path"]},
        {"field": "sha256", "value": rec["sha256"]},
        {"field": "input", "value": f"{rec['input_name']} {rec['dtype']} {shape}"},
        {"field": "opset", "value": rec["opset"]},
        {"field": "external data", "value": rec["external_data"] or "none (one file)"},
        {"field": "folded BatchNorms", "value": f"{rec['folded_bn_count']} ({rec['folded_bn_channels']} channels)"},
        {"field": "export", "value": f"{rec['export_s']:.2f} s" + (" (cached)" if rec["cache_hit"] else "")},
        {"field": "libraries", "value": ", ".join(f"{k} {v}" for k, v in rec["versions"].items())},
    ]
    tables = [Table(f"{rec['model']} -> ONNX", (Column("field", ""), Column("value", "")), rows)]
    v = rec["verification"]
    if v is not None:
        tol = v["tolerance"]
        vrows = [{"metric": name, "value": num(v[name], 6 if name == "cosine" else 3),
                  "bound": f"{'>=' if name == 'cosine' else '<='} {tol[name]:.6g}"}
                 for name in ("rel_err", "rms_err", "cosine")]
        note = (f"{'PASSED' if v['passed'] else 'FAILED'}: ONNX Runtime CPU vs {v['reference']} on {v['images']} "
                f"random images; errors are relative to the output's std ({v['output_std']:.3g})")
        notes = [note]
        if v.get("noise_floor"):
            floor = v["noise_floor"]
            notes.append(f"fp16 bounds: twice the error of fp16 rounding alone in PyTorch (rms_err "
                         f"{floor['rms_err']:.3g}, rel_err {floor['rel_err']:.3g}) plus a fixed slack")
        tables.append(Table("Verification", (Column("metric", "metric"), Column("value", "value"),
                                             Column("bound", "bound")), vrows, notes=tuple(notes)))
    return tables
