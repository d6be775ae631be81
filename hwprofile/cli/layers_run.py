"""``hwprofile layers MODEL|FILE.onnx --runner R``, the handler: per-layer time joined with counts, on the
roofline (the parser, light, is :mod:`hwprofile.cli.layers`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from exporters import to_onnx, to_tensorrt
from hwprofile.analysis import from_raw, report
from hwprofile.atomic import check_writable, write_json
from hwprofile.cli._output import ALWAYS, Column, Table, emit, num, si, view_of
from hwprofile.errors import ConfigError, InputFileError, MeasurementError
from hwprofile.graph import count_onnx
from hwprofile.measure import measure_layers
from hwprofile.profile import Workload, layers_file_header
from hwprofile.runners import check_runner_name, resolve_device, runner_class
from hwprofile.zoo import check_scale, resolve, scaled_label


def _workload(args, runner: str):
    options = {"threads": args.threads} if args.threads else {}
    if "threads" in options and "threads" not in runner_class(runner).option_names:
        raise ConfigError(f"{runner} takes no --threads")
    kw = {"precision": args.precision, "options": options}
    needs = runner_class(runner).input  # module | onnx | engine, as the runner declares it
    if args.model.lower().endswith(".onnx"):
        onnx_path, batch, res = _onnx_file(args, needs, runner)
        label = Path(args.model).name
    else:
        if args.scale is not None and not args.strategy:
            raise ConfigError("--scale needs --strategy (e.g. --strategy dWr --scale 4)")
        scale = 1.0 if args.scale is None else check_scale(args.scale)
        spec = resolve(args.model, args.strategy, scale) if args.strategy else resolve(args.model)
        batch, res = args.batch or 1, args.resolution or spec.train_res
        label = scaled_label(spec.name, args.strategy, scale)
        if needs == "module":
            return Workload.from_spec(spec, batch, res, **kw), None, label
        onnx_path = str(to_onnx(spec, batch="dynamic", fp16=args.precision == "fp16", cache_dir=args.cache_dir).path)
    if needs == "engine":
        engine = to_tensorrt(onnx_path, precision=args.precision, batch_sizes=(batch,),
                             cache_dir=args.cache_dir, profiling_verbosity="detailed")
        return Workload.from_file(engine.path, batch, res, **kw), onnx_path, label
    return Workload.from_file(onnx_path, batch, res, **kw), onnx_path, label


def _onnx_file(args, needs: str, runner: str) -> tuple[str, int, int]:
    """(path, batch, resolution) of a user's .onnx file, read and checked before anything runs: a file that
    is not a counted image model is exit 2, and flags that do not apply to a file are refused."""
    given = [f for f, v in (("--strategy", args.strategy), ("--scale", args.scale)) if v is not None]
    if given:
        raise ConfigError(f"{' and '.join(given)} apply to zoo models; {Path(args.model).name} is measured as it "
                          "is (export a scaled model first: hwprofile export MODEL --strategy S --scale F "
                          "-o FILE.onnx)")
    if needs == "module":
        raise ConfigError(f"{runner} runs zoo models; an .onnx file runs on ort:* or trt")
    if not Path(args.model).is_file():
        raise InputFileError(f"ONNX model {args.model!r} does not exist")
    counts = count_onnx(args.model, batch=args.batch)  # one line for a truncated, foreign or shapeless graph
    if args.resolution is not None and args.resolution != counts.resolution:
        raise ConfigError(f"--resolution {args.resolution}: {Path(args.model).name} has a fixed input of "
                          f"{'x'.join(map(str, counts.input_shape[2:]))}; leave --resolution out")
    return str(Path(args.model).resolve()), counts.batch, counts.resolution


def run(args: argparse.Namespace) -> int:
    runner = check_runner_name(args.runner)
    device = resolve_device(args.device)
    out = Path(args.out) if args.out else None
    if out is not None:
        if os.path.lexists(out):  # a dangling link too: it is never written through
            raise ConfigError(f"{str(out)!r} already exists; choose another --out")
        check_writable(out, "layer breakdown")  # before measuring: a folder that cannot be written is one line now
    workload, onnx_path, label = _workload(args, runner)
    m = measure_layers(runner, workload, device=device, onnx_path=onnx_path, iterations=args.iterations)
    if not m.ok or not m.layers:
        raise MeasurementError(f"{label} on {runner}: {m.status}: {m.reason or 'no layer times came back'}")
    if m.layers.get("error"):
        raise MeasurementError(f"{label} on {runner}: {m.layers['error']}")
    rep = report(from_raw(m.layers), model=label, runner=runner, device=device, batch=workload.batch,
                 precision=workload.precision)
    data = {**layers_file_header(), **rep.to_dict(), "latency_median_ms": (m.latency or {}).get("median_ms"),
            "element_bytes": m.layers.get("element_bytes")}
    if out is not None:  # the atomic writer: never through a link, never replacing, no partial file
        write_json(out, _standard(json.loads(json.dumps(data, default=str))), what="layer breakdown")
        sys.stderr.write(f"saved {out}\n")
    emit(tables(data, args.top), view_of(args), data)
    return 0


def _standard(value):
    """``value`` with NaN and infinities as None: the saved report is standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _standard(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_standard(v) for v in value]
    return value


def _pct(value) -> str:
    return "-" if value is None else f"{value:.0%}"


def _roof(value) -> str:
    """A share of the roof; above 1 it is no share (flagged !)."""
    return "-" if value is None else f"{value:.0%}!" if value > 1.0 else f"{value:.0%}"


ROW_COLUMNS = (Column("name", "layer", priority=ALWAYS, wrap=32), Column("op_type", "op", priority=1),
               Column("group", "group", priority=4), Column("time_ms", "ms", lambda v: num(v, 3), priority=ALWAYS),
               Column("flops", "flops (MAC)", si, priority=3), Column("bytes", "bytes", si, priority=3),
               Column("intensity", "flop/B", lambda v: num(v, 3), priority=2), Column("bound", "bound", priority=1),
               Column("roof_share", "of roof", _roof, priority=2), Column("fused", "ONNX nodes", priority=1, wrap=24))


def tables(data: dict, top: int = 25) -> list[Table]:
    rows = [dict(r, fused=", ".join(r.get("onnx_nodes") or []) if len(r.get("onnx_nodes") or []) > 1 else
                 (r.get("onnx_nodes") or [""])[0] if r.get("onnx_nodes") else "") for r in data["rows"]]
    body = [r for r in rows if r.get("kind") != "gap"]
    shown = (sorted(body, key=lambda r: -r["time_ms"])[:top] if top else body) + \
        [r for r in rows if r.get("kind") == "gap"]
    pk = data.get("peaks") or {}
    overhead = data.get("profiler_overhead")
    head = (f"{data['model']} on {data['runner']} ({data['device']}), batch {data['batch']}: end-to-end "
            f"{num(data['end_to_end_ms'])} ms (clean), profiled run {num(data.get('profiled_run_ms'))} ms"
            + ("" if overhead is None else f" ({overhead:+.0%} profiler overhead)")
            + f", layer sum {num(data['layer_sum_ms'])} ms, memory-bound share of layer time "
            f"{_pct(data['memory_bound_time_fraction'])}")
    threads = f" at {pk['threads']} threads" if pk.get("threads") else ""
    notes = [f"ridge {num(pk.get('ridge'))} flop/byte = {si(pk.get('flops_per_s'))}FLOP/s / "
             f"{si(pk.get('bytes_per_s'))}B/s (peaks measured{threads})" if pk else "no device peaks",
             data["bytes_model"], "rows + the gap row = the profiled run; the profiled run = the clean end-to-end "
             "+ the profiler's overhead", *data.get("notes", [])]
    if top and len(body) > top:
        notes.insert(0, f"the {top} slowest of {len(body)} rows, then the gap row (--top 0: all)")
    summary = [dict(s, share=s["time_share"], mem=s["memory_bound_ms"]) for s in data["summary"]]
    return [Table(head, ROW_COLUMNS, shown, notes=tuple(notes)),
            Table("Per op type", (Column("op_type", "op"), Column("layers", "rows"),
                                  Column("time_ms", "ms", lambda v: num(v, 3)), Column("share", "share", _pct),
                                  Column("mem", "memory-bound ms", lambda v: num(v, 3)),
                                  Column("flops", "flops (MAC)", si), Column("bytes", "bytes", si)), summary)]
