"""Per-layer time joined with per-layer counts and placed on the device's roofline.

``measure_layers(runner, workload)`` times a model end to end without a profiler and then layer by
layer with the runner's own profiler (ONNX Runtime's profiler, forward hooks for torch, TensorRT's
``IProfiler``), in the usual isolated child (:func:`hwprofile.measure.measure` with ``layers=``);
:func:`report` turns that into a :class:`LayerReport`.

The model behind every number:

- ``flops`` are multiply-adds (pycls's definition; 2 flops per multiply-add on the roofline);
- ``bytes`` = the layer's inputs + weights + outputs at the element size (tensors kept inside a
  fused layer are not counted);
- ``intensity`` = 2 x flops / bytes; a layer is ``memory``-bound when its intensity is below the
  ridge point = peak FLOP/s / peak bytes/s (dense fp32 matmul and copy bandwidth measured by
  :mod:`hwprofile.measure.peaks`), else ``compute``-bound; ``roof_share`` = achieved FLOP/s over
  min(peak FLOP/s, intensity x peak bytes/s);
- layer-less work (ORT's layout reorders, TensorRT's reformat layers, torch's Python between
  modules) is an ``overhead`` row, and the rest of the end-to-end time the profiler did not see is a
  ``gap`` row, so rows add up to ``end_to_end_ms``.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from .compare import identity, identity_dict
from .measure import TimingConfig
from .measure.core import measure

BYTES_MODEL = ("bytes = inputs + weights + outputs of the layer at the element size (tensors that stay inside a "
               "fused layer are not counted); intensity = 2 flops per multiply-add / bytes; bound = memory when "
               "intensity < ridge = peak FLOP/s / peak bytes/s (dense fp32 matmul and copy bandwidth)")
COLUMNS = ("name", "kind", "op_type", "group", "depthwise", "time_ms", "flops", "bytes", "onnx_nodes")
GAP = "(gap: end-to-end minus profiled rows)"


def device_peaks(peaks: dict | None, precision: str = "fp32") -> dict | None:
    """{flops_per_s, bytes_per_s, ridge} from :func:`hwprofile.measure.peaks` output (or a profile's)."""
    if not peaks:
        return None
    if "flops_per_s" in peaks and "bytes_per_s" in peaks:
        flops, bw = float(peaks["flops_per_s"]), float(peaks["bytes_per_s"])
    else:
        mm = peaks.get("matmul_fp16") if precision == "fp16" and peaks.get("matmul_fp16") else peaks.get("matmul_fp32")
        if not mm or not peaks.get("copy"):
            return None
        # the best rate over the repeats: a peak is an upper bound, and other processes only lower it
        flops = float(mm.get("flops_per_s_best") or mm["flops_per_s"])
        bw = float(peaks["copy"].get("gb_per_s_best") or peaks["copy"]["gb_per_s"]) * 1e9
    return {"flops_per_s": flops, "bytes_per_s": bw, "ridge": flops / bw}


def compact(raw: dict) -> dict:
    """The per-layer breakdown as stored in a profile record (``Record.layers``): rows as lists."""
    rows = [[r.get(c) for c in COLUMNS] for r in raw.get("rows", [])]
    for row in rows:
        row[5] = round(float(row[5]), 5)
    keep = {k: raw.get(k) for k in ("method", "iterations", "profiled_run_ms", "unprofiled_ms", "element_bytes",
                                    "peaks")}
    return {"version": 1, **keep, "columns": list(COLUMNS), "rows": rows}


def expand(data: dict) -> dict:
    """The inverse of :func:`compact` (a raw breakdown with dict rows); raw input passes through."""
    if "columns" not in data:
        return data
    cols = data["columns"]
    return {**{k: v for k, v in data.items() if k not in ("columns", "rows")},
            "rows": [dict(zip(cols, r)) for r in data["rows"]]}


@dataclass
class LayerReport:
    model: str
    runner: str
    device: str
    batch: int
    end_to_end_ms: float | None
    layer_sum_ms: float
    profiled_run_ms: float | None
    memory_bound_time_fraction: float | None
    peaks: dict | None
    rows: list[dict]
    summary: list[dict]
    method: str = ""
    iterations: int | None = None
    bytes_model: str = BYTES_MODEL
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(vars(self))

    @property
    def convolutions(self) -> list[str]:
        """Every exported Conv node that appears in a row."""
        return [n for r in self.rows for n, op in zip(r.get("onnx_nodes") or [], r.get("onnx_ops") or [])
                if op == "Conv"] or [r["name"] for r in self.rows if r.get("op_type") == "Conv2d"]


def _classify(row: dict, pk: dict | None) -> None:
    flops, nbytes, t = row.get("flops") or 0, row.get("bytes"), row.get("time_ms")
    row["intensity"] = (2.0 * flops / nbytes) if nbytes else None
    row["achieved_flops_per_s"] = (2.0 * flops / (t / 1e3)) if t and t > 0 else None
    row["bound"] = row["roof_share"] = None
    if pk is None or row["intensity"] is None or row.get("kind") != "layer":
        return
    row["bound"] = "memory" if row["intensity"] < pk["ridge"] else "compute"
    roof = min(pk["flops_per_s"], row["intensity"] * pk["bytes_per_s"])
    if row["achieved_flops_per_s"] is not None and roof > 0:
        row["roof_share"] = row["achieved_flops_per_s"] / roof


def summarize_ops(rows: list[dict]) -> list[dict]:
    """Per op type: rows, time, share of the row time, flops, bytes, memory-bound time."""
    total = sum(r["time_ms"] for r in rows if r.get("kind") != "gap") or 1.0
    out: dict[str, dict] = {}
    for r in rows:
        if r.get("kind") == "gap":
            continue
        s = out.setdefault(r.get("op_type") or "?", {"op_type": r.get("op_type") or "?", "layers": 0, "time_ms": 0.0,
                                                     "flops": 0, "bytes": 0, "memory_bound_ms": 0.0})
        s["layers"] += 1
        s["time_ms"] += r["time_ms"]
        s["flops"] += r.get("flops") or 0
        s["bytes"] += r.get("bytes") or 0
        if r.get("bound") == "memory":
            s["memory_bound_ms"] += r["time_ms"]
    for s in out.values():
        s["time_share"] = s["time_ms"] / total
    return sorted(out.values(), key=lambda s: -s["time_ms"])


def report(raw: dict, *, model: str, runner: str, device: str, batch: int, end_to_end_ms: float | None,
           peaks: dict | None = None, precision: str = "fp32") -> LayerReport:
    """A :class:`LayerReport` from a runner's breakdown (raw or compact) and the unprofiled latency."""
    data = expand(raw)
    if data.get("unprofiled_ms"):  # unprofiled runs interleaved with the profiled ones: the same load
        end_to_end_ms = float(data["unprofiled_ms"])
    pk = device_peaks(peaks if peaks is not None else data.get("peaks"), precision)
    rows = [dict(r) for r in data.get("rows", [])]
    for r in rows:
        _classify(r, pk)
    layer_sum = sum(r["time_ms"] for r in rows)
    if end_to_end_ms is not None:
        gap = {"name": GAP, "kind": "gap", "op_type": "gap", "time_ms": end_to_end_ms - layer_sum, "flops": 0,
               "bytes": None, "onnx_nodes": [], "group": None, "depthwise": False}
        _classify(gap, None)
        rows.append(gap)
    timed = [r for r in rows if r.get("bound") is not None]
    frac = (sum(r["time_ms"] for r in timed if r["bound"] == "memory") / sum(r["time_ms"] for r in timed)
            if timed and sum(r["time_ms"] for r in timed) > 0 else None)
    notes = []
    if end_to_end_ms and data.get("profiled_run_ms"):
        notes.append(f"profiling overhead: a profiled run took {data['profiled_run_ms']:.3g} ms, the unprofiled "
                     f"median {end_to_end_ms:.3g} ms ({data['profiled_run_ms'] / end_to_end_ms - 1:+.0%}); the "
                     f"profiled rows add up to {layer_sum:.3g} ms ({layer_sum / end_to_end_ms:.0%} of end-to-end)")
    if pk is None:
        notes.append("no device peaks: bound and roof share are not given")
    return LayerReport(model=model, runner=runner, device=device, batch=batch, end_to_end_ms=end_to_end_ms,
                       layer_sum_ms=layer_sum, profiled_run_ms=data.get("profiled_run_ms"),
                       memory_bound_time_fraction=frac, peaks=pk, rows=rows, summary=summarize_ops(rows),
                       method=data.get("method", ""), iterations=data.get("iterations"), notes=notes)


def measure_layers(runner: str, workload, *, device: str = "cpu", onnx_path: str | None = None,
                   iterations: int = 30, timing=None, timeout_s: float = 600.0, peaks: dict | None = None,
                   peak_seconds: float = 0.5, matmul_n: int | None = None):
    """Measure ``workload`` end to end and per layer in one isolated child; returns the Measurement
    (``.layers`` holds the breakdown and the peaks measured in the same child)."""
    spec = {"iterations": iterations, "onnx_path": onnx_path,
            "peaks": None if peaks is not None else {"seconds": peak_seconds, "matmul_n": matmul_n}}
    m = measure(runner, workload, timing or TimingConfig(budget_s=2.0, throughput_window_s=0.0), timeout_s=timeout_s,
                device=device, layers=spec)
    if m.ok and m.layers is not None and peaks is not None:
        m.layers["peaks"] = peaks
    return m


# --------------------------------------------------------------------------- diffs

def _key(row: dict) -> str:
    return row["name"]


def diff(a: dict, b: dict, top: int = 5) -> list[dict]:
    """The layers whose time changed most from breakdown ``a`` to ``b`` (raw or compact), by
    absolute change; each with ``delta_ms`` and ``ratio`` (b / a). Rows are matched by name."""
    ra = {_key(r): r for r in expand(a).get("rows", []) if r.get("kind") != "gap"}
    rb = {_key(r): r for r in expand(b).get("rows", []) if r.get("kind") != "gap"}
    out = []
    for name in ra.keys() | rb.keys():
        ta = ra[name]["time_ms"] if name in ra else 0.0
        tb = rb[name]["time_ms"] if name in rb else 0.0
        row = rb.get(name) or ra[name]
        out.append({"name": name, "op_type": row.get("op_type"), "onnx_nodes": row.get("onnx_nodes") or [],
                    "a_ms": ta if name in ra else None, "b_ms": tb if name in rb else None, "delta_ms": tb - ta,
                    "ratio": (tb / ta) if name in ra and name in rb and ta > 0 else None})
    out.sort(key=lambda d: -abs(d["delta_ms"]))
    return out[:top]


def diff_text(changes: list[dict], limit: int = 3) -> str:
    """"layer X +1.2 ms (3.4x), layer Y ..."."""
    parts = []
    for d in changes[:limit]:
        rel = f" ({d['ratio']:.2f}x)" if d.get("ratio") is not None else (" (new)" if d["a_ms"] is None else " (gone)")
        parts.append(f"{d['name']} [{d['op_type']}] {d['delta_ms']:+.3g} ms{rel}")
    return "; ".join(parts)


def median(values) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------ profiles (run --layers)

def record_report(record, profile=None) -> LayerReport | None:
    """The LayerReport of a profile record measured with ``run --layers`` (None without layers). The
    device's peaks stored in the profile are preferred to those measured beside the record."""
    if not getattr(record, "layers", None):
        return None
    peaks = profile.device(record.device_id).peaks if profile is not None else None
    return report(record.layers, model=record.label, runner=record.runner, device=record.device_id,
                  batch=record.batch, end_to_end_ms=record.median_ms, peaks=peaks,
                  precision=record.precision)


def growth(profile) -> list[dict]:
    """Per model, runner, batch and strategy, by scale: flops, acts, latency and the memory-bound
    share of layer time, so one can see the share grow with s (the paper's argument, layer by layer)."""
    rows = []
    for r in profile.records:
        rep = record_report(r, profile) if r.ok else None
        if rep is None:
            continue
        rows.append({"model": r.model, "runner": r.runner, "batch": r.batch, "strategy": r.strategy or "-",
                     "scale": r.scale, "flops": r.flops, "acts": r.acts, "latency_ms": r.median_ms,
                     "layer_sum_ms": rep.layer_sum_ms, "memory_bound_time_fraction": rep.memory_bound_time_fraction})
    base = {(x["model"], x["runner"], x["batch"]): x for x in rows if x["scale"] == 1.0}
    out = []
    for x in rows:  # the unscaled model opens every strategy's series
        if x["scale"] == 1.0:
            continue
        out.append(x)
    for key, b in base.items():
        strategies = sorted({x["strategy"] for x in out if (x["model"], x["runner"], x["batch"]) == key}) or ["-"]
        out += [dict(b, strategy=s) for s in strategies]
    return sorted(out, key=lambda x: (x["model"], x["runner"], x["batch"], x["strategy"], x["scale"]))


def changed_layers(pairs, top: int = 5) -> list[dict]:
    """For joined (base, current) records that both have layer breakdowns: the layers whose time
    changed most, absolute and relative (see :func:`diff`)."""
    out = []
    for base, cur in pairs:
        if getattr(base, "layers", None) and getattr(cur, "layers", None):
            changes = diff(base.layers, cur.layers, top=top)
            out.append({"label": cur.label, "runner": cur.runner, "batch": cur.batch, "base_ms": base.median_ms,
                        "current_ms": cur.median_ms, "changes": changes, "text": diff_text(changes)})
    return out


def regression_layers(verdicts, base_records, cur_records, top: int = 5) -> list[dict]:
    """:func:`changed_layers` for the records whose latency regressed (a regression with its cause)."""

    def key(ident: dict) -> str:
        return json.dumps(ident, sort_keys=True, default=str)

    base = {key(identity_dict(identity(r))): r for r in base_records}
    cur = {key(identity_dict(identity(r))): r for r in cur_records}
    pairs = []
    for v in verdicts:
        if v.status == "regression" and v.metric == "latency":
            k = key(v.identity)
            if k in base and k in cur:
                pairs.append((base[k], cur[k]))
    return changed_layers(pairs, top)


def changes_table_rows(found: list[dict]) -> list[dict]:
    """Flat rows (one per changed layer) for a table."""
    rows = []
    for f in found:
        for d in f["changes"]:
            rows.append({"model": f["label"], "runner": f["runner"], "batch": f["batch"], "layer": d["name"],
                         "op_type": d["op_type"], "base_ms": d["a_ms"], "current_ms": d["b_ms"],
                         "delta_ms": d["delta_ms"], "ratio": d["ratio"]})
    return rows
