"""``hwprofile import TABLE.csv --device-name NAME``: someone else's benchmark table as a profile."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hwprofile.cli._common import csv_list, int_in
from hwprofile.cli._output import Column, Table, add_format_args, emit, si, view_of
from hwprofile.errors import ConfigError
from hwprofile.profile import FIELDS, PRECISIONS, PRESETS, TableFilter, import_table, summary_text
from hwprofile.runners import check_runner_name

EPILOG = """examples:
  hwprofile import benchmark-infer-amp-nchw-pt291-cu128-4090.csv --preset timm --device-name rtx4090 \\
      --family cnn --batch main -o rtx4090.json && hwprofile show rtx4090.json
  hwprofile import mine.csv --device-name a100 --precision fp16 \\
      --map model=name,batch=bs,latency_ms=ms,flops_g=gmacs,acts_m=macts

column fields (FIELD=COLUMN): """ + ", ".join(FIELDS) + """
  the suffix is the unit: flops_g = billions of multiply-adds per image, acts_m = millions of
  activations per image, latency_ms = milliseconds per batch, samples_per_s = images per second.
the records are marked imported (runner imported:PRESET or imported:csv); compare and check refuse
to gate them against measured records unless --allow-mismatch. docs/cli.md#import"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn a public benchmark table (timm's CSVs, any CSV) into a profile",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv_path", metavar="TABLE", help="CSV file with one row per model (and batch size)")
    p.add_argument("--device-name", required=True, metavar="NAME",
                   help="the device the table was measured on, as records will name it (e.g. rtx4090)")
    p.add_argument("--preset", choices=tuple(PRESETS), help="a known layout: timm = timm's "
                   "results/benchmark-infer-*.csv (columns, units, precision from the file name)")
    p.add_argument("--map", metavar="FIELD=COLUMN,...", dest="column_map",
                   help="which column holds each field (adds to or overrides the preset's); see below")
    p.add_argument("--precision", choices=PRECISIONS, help="the precision the table was measured in "
                   "(the timm preset reads it from the file name: amp = fp16)")
    p.add_argument("--batch-size", type=int_in(1, 1 << 20, "--batch-size"), metavar="N",
                   help="the batch size of every row, for a table without a batch column")
    p.add_argument("--family", metavar="cnn|FAMILY,...", help="keep CNNs (cnn) or these timm families (the "
                   "module that registers a model: resnet, efficientnet, ...); docs/results.md says what "
                   "counts as a CNN")
    p.add_argument("--batch", metavar="main|N", help="keep one batch size: N, or main = the table's most "
                   "common one")
    p.add_argument("--models", metavar="GLOB,...", help="keep models whose name matches a pattern")
    p.add_argument("--exclude", metavar="GLOB,...", help="drop models whose name matches a pattern")
    p.add_argument("--like-runner", metavar="RUNNER", help="the hwprofile runner closest to what made the "
                   "table (timm: torch:cuda or torch:cpu from the file name): its zoo models then join that "
                   "runner's records in compare and check")
    p.add_argument("-o", "--out", help="profile to write (default: runs/NAME__TABLE.json); never "
                   "overwritten unless --force")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_format_args(p)
    p.set_defaults(handler=run)


def _columns(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in csv_list(text) if text else []:
        name, sep, col = item.partition("=")
        if not sep or not name.strip() or not col.strip():
            raise ConfigError(f"--map: {item!r} is not FIELD=COLUMN (fields: {', '.join(FIELDS)})")
        out[name.strip()] = col.strip()
    return out


def _batch(text: str | None) -> int | str | None:
    if text is None or text == "main":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"--batch {text!r}: expected main or an integer >= 1")
    return value


def table_filter(args: argparse.Namespace) -> TableFilter:
    return TableFilter(models=tuple(csv_list(args.models)) if args.models else (),
                       exclude=tuple(csv_list(args.exclude)) if args.exclude else (),
                       families=tuple(csv_list(args.family)) if args.family else (), batch=_batch(args.batch))


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def run(args: argparse.Namespace) -> int:
    if not args.preset and not args.column_map:
        raise ConfigError("say how to read the table: --preset timm or --map FIELD=COLUMN,...")
    like = check_runner_name(args.like_runner) if args.like_runner else None
    out = Path(args.out) if args.out else Path("runs") / f"{args.device_name}__{Path(args.csv_path).stem}.json"
    if os.path.lexists(out) and not args.force:
        raise ConfigError(f"{str(out)!r} already exists; import never overwrites a file: choose another -o "
                          "(or --force)")
    result = import_table(args.csv_path, device_name=args.device_name, preset=args.preset,
                          columns=_columns(args.column_map), precision=args.precision, batch_size=args.batch_size,
                          filters=table_filter(args), like_runner=like)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.profile.save(out, replace=args.force)
    src = result.source
    cols = (Column("model", "table model"), Column("zoo_model", "zoo model"), Column("resolution", "px"),
            Column("flops_table", "flops table", si), Column("flops_hwprofile", "flops hwprofile", si),
            Column("flops_ratio", "table/hw", _ratio), Column("params_ratio", "params table/hw", _ratio),
            Column("acts_table", "acts table", si), Column("acts_hwprofile", "acts hwprofile", si),
            Column("acts_ratio", "table/hw", _ratio))
    notes = ["flops are multiply-adds and acts are activations, per image; hwprofile counts as pycls does "
             "(docs/results.md, 'Counting conventions')"]
    if src.get("conventions"):
        notes.append("the table: " + src["conventions"])
    tables = [Table(f"Counts of zoo models: the table's beside hwprofile's ({len(result.counts)} records)", cols,
                    list(result.counts), notes=tuple(notes))] if result.counts else []
    emit(tables, view_of(args), {"out": str(out), "source": src, "counts": list(result.counts)})
    sys.stderr.write(f"imported {len(result.records)} records from {src['file']} (sha256 {src['sha256'][:12]}; "
                     f"{summary_text(src['rows'])}) as device {args.device_name}, precision "
                     f"{src['precision']['value']} ({src['precision']['from']})\n"
                     f"saved {out}; next: hwprofile show {out}\n")
    return 0
