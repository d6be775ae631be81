"""Per-layer time joined with per-layer counts and placed on the device's roofline.

``hwprofile.measure.measure_layers(runner, workload)`` measures a model in the usual isolated children
(:func:`hwprofile.measure.measure` with ``layers=``): the ordinary timing, then one more child that
measures in phases that never overlap -- a clean block, then rounds of profiled runs alone (ONNX
Runtime's profiler on its own session, the clean one closed; forward hooks for torch; TensorRT's
``IProfiler``), each followed by another clean block, then the device's peaks at the runner's thread count.
:func:`report` turns that into a :class:`LayerReport`.

The model behind every number:

- ``flops`` are multiply-adds (pycls's definition; 2 flops per multiply-add on the roofline);
- ``bytes`` = the layer's inputs + weights + outputs at the element size (tensors kept inside a
  fused layer are not counted);
- ``intensity`` = 2 x flops / bytes; a layer is ``memory``-bound when its intensity is below the
  ridge point = peak FLOP/s / peak bytes/s (dense matmul and copy bandwidth measured by
  :mod:`hwprofile.measure._peaks`), else ``compute``-bound; ``roof_share`` = achieved FLOP/s over
  min(peak FLOP/s, intensity x peak bytes/s); a share above 1 is flagged (``above_roof``), never a plain share;
- layer-less work (ORT's layout reorders, TensorRT's reformat layers, torch's Python between
  modules) is an ``overhead`` row; the rest of a profiled run its rows do not cover is a ``gap``
  row, so rows add up to ``profiled_run_ms``, which exceeds the clean ``end_to_end_ms`` by the
  profiler's own overhead (stated in every report).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from hwprofile.analysis._compare import identity, identity_dict
from hwprofile.errors import SchemaError
from hwprofile.profile import LAYER_COLUMNS, LAYER_VERSION, LayerBreakdown, check_peaks, describe_error

BYTES_MODEL = ("bytes = inputs + weights + outputs of the layer at the element size (tensors that stay inside a "
               "fused layer are not counted); intensity = 2 flops per multiply-add / bytes; bound = memory when "
               "intensity < ridge = peak FLOP/s / peak bytes/s (dense matmul and copy bandwidth)")
COLUMNS = LAYER_COLUMNS
GAP = "(gap: profiled run minus its rows)"
GAP_END_TO_END = "(gap: end-to-end minus profiled rows)"
#: the machine's speed may change this much between the clean phases before it is stated as drift
DRIFT = 0.10
#: why a profiler's rows can add up to more than its profiled run, by time source
_OVER = {"gpu": "TensorRT's per-layer times are taken with their own events and include their start-up",
         "host_synchronized": "every hook synchronizes the device",
         "host_launch": "host-side launch times overlap the device's work",
         "cpu": "rows were averaged over other runs than the run total"}
#: time sources whose per-layer times are not device time: kept off the roofline
HOST_SIDE = ("host_launch",)
TIME_SOURCE_TEXT = {"cpu": "host clock (the device's own on a CPU)", "gpu": "device time (TensorRT's IProfiler)",
                    "host_launch": "host-side launch times (ONNX Runtime's profiler on a GPU provider), not GPU "
                                   "time: not placed on the roofline",
                    "host_synchronized": "host clock around each module with a device synchronize (GPU time "
                                         "plus launch latency)"}


# --------------------------------------------------------------------------- peaks

def _rate(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) if ok else None


def select_peaks(peaks: dict | None, threads: int | None = None) -> dict | None:
    """The measured peaks (hwprofile.measure._peaks output, or a profile's device entry) that apply at ``threads``
    CPU threads: the entry itself when it was measured with that many (or on a GPU, or when either count is
    unknown), else its ``at_threads`` entry for that count; None when no peaks were measured at that count."""
    if not isinstance(peaks, dict) or "error" in peaks:
        return None
    if str(peaks.get("device", "cpu")).startswith("cuda") or threads is None:
        return peaks
    measured = peaks.get("threads")
    if measured is None or measured == threads:
        return peaks
    other = (peaks.get("at_threads") or {}).get(str(threads))
    return other if isinstance(other, dict) and "error" not in other else None


def device_peaks(peaks: dict | None, precision: str = "fp32") -> dict | None:
    """{flops_per_s, bytes_per_s, ridge, threads, disturbed, foreign_cpu_cores} from :func:`hwprofile.measure._peaks`
    output (or a profile's, or a report's derived form); None when they hold no usable positive rates."""
    if not isinstance(peaks, dict) or "error" in peaks:
        return None
    try:
        check_peaks(peaks)
    except ValueError:
        return None
    if "flops_per_s" in peaks and "bytes_per_s" in peaks:
        flops, bw = _rate(peaks["flops_per_s"]), _rate(peaks["bytes_per_s"])
    else:
        mm = peaks.get("matmul_fp16") if precision == "fp16" and peaks.get("matmul_fp16") else peaks.get("matmul_fp32")
        if not isinstance(mm, dict) or not isinstance(peaks.get("copy"), dict):
            return None
        # the best rate over the repeats: a peak is an upper bound, and other processes only lower it
        flops = _rate(mm.get("flops_per_s_best")) or _rate(mm.get("flops_per_s"))
        gb = _rate(peaks["copy"].get("gb_per_s_best")) or _rate(peaks["copy"].get("gb_per_s"))
        bw = gb * 1e9 if gb else None
    if not flops or not bw:
        return None
    return {"flops_per_s": flops, "bytes_per_s": bw, "ridge": flops / bw, "threads": peaks.get("threads"),
            "disturbed": bool(peaks.get("disturbed")), "foreign_cpu_cores": peaks.get("foreign_cpu_cores")}


# --------------------------------------------------------------------------- stored form

def breakdown_of(data: Any) -> LayerBreakdown:
    """A validated breakdown from a :class:`LayerBreakdown`, its stored (compact) form or a runner's raw output
    (rows as dicts); a problem is one SchemaError line naming the field."""
    if isinstance(data, LayerBreakdown):
        return data
    if not isinstance(data, dict):
        raise SchemaError(f"a layer breakdown must be an object, got {type(data).__name__}")
    if "version" not in data:
        data = {**data, "version": LAYER_VERSION}
    try:
        return LayerBreakdown.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(f"layer breakdown: {describe_error(exc)}") from None


def from_raw(raw: dict) -> LayerBreakdown:
    """A validated breakdown from what the per-layer child returned (its other keys are left out; rows keep
    their optional fields: median_ms, onnx_ops, provider)."""
    keep = {k: raw.get(k) for k in LayerBreakdown.model_fields if k not in ("version", "columns", "rows")
            and raw.get(k) is not None}
    rows = [{**r, "name": str(r.get("name") or "(unnamed)"), "flops": r.get("flops") or 0,
             "onnx_nodes": [str(n) for n in r.get("onnx_nodes") or [] if n]}
            for r in raw.get("rows", []) if isinstance(r, dict)]
    return breakdown_of({**keep, "version": LAYER_VERSION, "rows": rows})


def compact(raw: dict) -> dict:
    """The per-layer breakdown as stored in a profile record (``Record.layers``): rows as lists."""
    return from_raw(raw).to_dict()


def expand(data: Any) -> dict:
    """A breakdown as a plain dict with dict rows (the inverse of :func:`compact`)."""
    bd = breakdown_of(data)
    out = bd.model_dump(mode="json", exclude={"rows", "columns"})
    out["rows"] = bd.row_dicts()
    return out


def unavailable(reason: str) -> dict:
    """The stored form of a breakdown that could not be measured (the record's own timing stands)."""
    return LayerBreakdown(version=LAYER_VERSION, error=reason[:4000]).to_dict()


# --------------------------------------------------------------------------- reports

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
    time_source: str | None = None
    clean_after_ms: float | None = None
    rounds: int | None = None  # rounds of profiled runs, each between two clean blocks
    clean_blocks_ms: list[float] | None = None  # each clean block's median, in order
    profiler_overhead: float | None = None  # profiled run / clean end-to-end - 1
    precision: str = "fp32"
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
    row["above_roof"] = False
    if pk is None or row["intensity"] is None or row.get("kind") != "layer":
        return
    row["bound"] = "memory" if row["intensity"] < pk["ridge"] else "compute"
    roof = min(pk["flops_per_s"], row["intensity"] * pk["bytes_per_s"])
    if row["achieved_flops_per_s"] is not None and roof > 0:
        row["roof_share"] = row["achieved_flops_per_s"] / roof
        row["above_roof"] = row["roof_share"] > 1.0


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


def _gap_row(bd: LayerBreakdown, layer_sum: float, end_to_end_ms: float | None) -> dict | None:
    """The part of a profiled run its rows do not cover (between layers), or for a version 1 breakdown without
    a profiled run, the end-to-end minus the rows; a negative gap's name says why."""
    if bd.profiled_run_ms is not None:
        value, name = bd.profiled_run_ms - layer_sum, GAP
    elif end_to_end_ms is not None:
        value, name = end_to_end_ms - layer_sum, GAP_END_TO_END
    else:
        return None
    if value < 0:
        why = (_OVER.get(bd.time_source or "", "the profiler's cost is inside its rows")
               if bd.profiled_run_ms is not None else "the profiler's own cost is inside its rows")
        whole = "profiled run" if bd.profiled_run_ms is not None else "end-to-end"
        name = f"(gap, negative: the rows add up to more than the {whole}: {why})"
    return {"name": name, "kind": "gap", "op_type": "gap", "time_ms": value, "flops": 0, "bytes": None,
            "onnx_nodes": [], "group": None, "depthwise": False}


def report(raw: Any, *, model: str, runner: str, device: str, batch: int, end_to_end_ms: float | None = None,
           peaks: dict | None = None, precision: str = "fp32") -> LayerReport:
    """A :class:`LayerReport` from a breakdown (typed, stored or a runner's raw output).

    ``end_to_end_ms`` is used only when the breakdown has no clean latency of its own (version 1, measured
    interleaved); ``peaks`` (e.g. the device's, at the record's threads) are preferred to the breakdown's own
    unless they were measured under load and the breakdown's were not."""
    bd = breakdown_of(raw)
    e2e = bd.end_to_end_ms if bd.end_to_end_ms is not None else end_to_end_ms
    pk = _choose(device_peaks(peaks, precision), device_peaks(bd.peaks, precision))
    host_side = bd.time_source in HOST_SIDE
    rows = bd.row_dicts()
    for r in rows:
        _classify(r, None if host_side else pk)
    layer_sum = sum(r["time_ms"] for r in rows)
    gap = _gap_row(bd, layer_sum, e2e)
    if gap is not None:
        _classify(gap, None)
        rows.append(gap)
    timed = [r for r in rows if r.get("bound") is not None]
    timed_ms = sum(r["time_ms"] for r in timed)
    frac = sum(r["time_ms"] for r in timed if r["bound"] == "memory") / timed_ms if timed and timed_ms > 0 else None
    overhead = bd.profiled_run_ms / e2e - 1 if e2e and bd.profiled_run_ms else None
    return LayerReport(model=model, runner=runner, device=device, batch=batch, end_to_end_ms=e2e,
                       layer_sum_ms=layer_sum, profiled_run_ms=bd.profiled_run_ms, memory_bound_time_fraction=frac,
                       peaks=pk, rows=rows, summary=summarize_ops(rows), method=bd.method, iterations=bd.iterations,
                       time_source=bd.time_source, clean_after_ms=bd.clean_after_ms, rounds=bd.rounds,
                       clean_blocks_ms=bd.clean_blocks_ms, profiler_overhead=overhead,
                       precision=precision, notes=_notes(bd, e2e, layer_sum, overhead, pk, rows, host_side))


def _choose(given: dict | None, own: dict | None) -> dict | None:
    """The given peaks unless they were measured under load and the breakdown's own were not."""
    if given is None:
        return own
    if given["disturbed"] and own is not None and not own["disturbed"]:
        return own
    return given


def _notes(bd: LayerBreakdown, e2e: float | None, layer_sum: float, overhead: float | None, pk: dict | None,
           rows: list[dict], host_side: bool) -> list[str]:
    notes = []
    if bd.version == 1:
        notes.append("measured by hwprofile before issue 20 (profiled runs interleaved with unprofiled ones, which "
                     "disturbed both): the end-to-end shown is the record's latency; measure again for clean "
                     "per-layer times")
    if e2e and bd.profiled_run_ms:
        notes.append(f"profiler overhead: a profiled run took {bd.profiled_run_ms:.3g} ms against the clean "
                     f"{e2e:.3g} ms ({overhead:+.0%}); its rows add up to {layer_sum:.3g} ms ({layer_sum / e2e:.0%} "
                     "of the clean end-to-end) and the gap row holds the rest of the profiled run")
    if bd.rounds and bd.clean_blocks_ms and len(bd.clean_blocks_ms) > 1:
        medians = ", ".join(f"{b:.3g}" for b in bd.clean_blocks_ms)
        notes.append(f"{bd.rounds} round{'s' if bd.rounds > 1 else ''} of profiled runs, each between two blocks of "
                     f"clean runs (their medians: {medians} ms); the end-to-end is the clean latency around the "
                     "rounds")
    blocks = bd.clean_blocks_ms or []
    if len(blocks) >= 2:  # rounds between clean blocks: the clean latency of the rounds follows the drift
        spread = max(blocks) / min(blocks) - 1
        if spread > DRIFT:
            notes.append(f"the clean latency moved between {min(blocks):.3g} and {max(blocks):.3g} ms over the "
                         f"{len(blocks)} clean blocks ({spread:+.0%}): the machine's speed changed; the end-to-end "
                         "is the clean latency around each profiled round, so the overhead above follows the drift, "
                         "but single layers may be slowed")
    elif e2e and bd.clean_after_ms:
        drift = bd.clean_after_ms / e2e - 1
        if abs(drift) > DRIFT:
            notes.append(f"the clean latency changed from {e2e:.3g} ms before profiling to {bd.clean_after_ms:.3g} ms "
                         f"after ({drift:+.0%}): the machine's speed changed, so the overhead above is uncertain by "
                         "as much")
    if bd.foreign_cpu_cores:
        notes.append(f"other processes kept {bd.foreign_cpu_cores:.2g} CPU cores busy while the layers were "
                     "profiled: single layers may be slowed")
    if bd.time_source:
        notes.append(f"layer times: {TIME_SOURCE_TEXT[bd.time_source]}")
    if pk is None:
        notes.append("no device peaks (at the record's thread count): bound and roof share are not given")
    elif pk["disturbed"]:
        notes.append(f"the peaks were measured while other processes kept {pk['foreign_cpu_cores'] or 0:.2g} CPU "
                     "cores busy, after every retry: they are too low, so bounds lean to compute and roof shares "
                     "are too high")
    above = sum(1 for r in rows if r.get("above_roof"))
    if above:
        notes.append(f"{above} layers reached more than the measured roof (flagged !): the peaks were measured "
                     "too low, or the layer's tensors stay in cache, which the copy bandwidth does not model")
    notes.extend(bd.notes)
    return notes


def file_report(lf) -> LayerReport:
    """The report of a saved layers file (:class:`hwprofile.profile._layer_file.LayersFile`), rebuilt from its rows and
    peaks (the derived numbers a file holds are not trusted)."""
    legacy = lf.schema_version == 0  # its end_to_end_ms was measured interleaved: the clean latency is the other
    return report(lf.breakdown(), model=lf.model, runner=lf.runner, device=lf.device, batch=lf.batch,
                  end_to_end_ms=lf.latency_median_ms if legacy else lf.end_to_end_ms, precision=lf.precision)


# --------------------------------------------------------------------------- diffs

def _rows(data: Any) -> dict[str, dict]:
    if data is None:
        return {}
    return {r["name"]: r for r in breakdown_of(data).row_dicts() if r.get("kind") != "gap"}


def has_rows(data: Any) -> bool:
    """Whether a (stored or typed) breakdown holds per-layer rows."""
    if data is None:
        return False
    try:
        return bool(breakdown_of(data).rows)
    except SchemaError:
        return False


def diff(a: Any, b: Any, top: int = 5) -> list[dict]:
    """The layers whose time changed most from breakdown ``a`` to ``b`` (typed, stored or raw), by
    absolute change; each with ``delta_ms`` and ``ratio`` (b / a). Rows are matched by name."""
    ra, rb = _rows(a), _rows(b)
    out: list[dict[str, Any]] = []
    for name in ra.keys() | rb.keys():
        ta = ra[name]["time_ms"] if name in ra else 0.0
        tb = rb[name]["time_ms"] if name in rb else 0.0
        row = rb.get(name) or ra[name]
        out.append({"name": name, "op_type": row.get("op_type"), "onnx_nodes": row.get("onnx_nodes") or [],
                    "a_ms": ta if name in ra else None, "b_ms": tb if name in rb else None, "delta_ms": tb - ta,
                    "ratio": (tb / ta) if name in ra and name in rb and ta > 0 else None})
    out.sort(key=lambda d: (-abs(d["delta_ms"]), d["name"]))
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
    """The LayerReport of a profile record measured with ``run --layers`` (None without per-layer rows). The
    device's peaks stored in the profile at the record's thread count are preferred to those measured beside
    the record, unless they were measured under load and those were not."""
    if not has_rows(getattr(record, "layers", None)):
        return None
    threads = getattr(record.settings, "threads", None)
    peaks = select_peaks(profile.device(record.device_id).peaks, threads) if profile is not None else None
    return report(record.layers, model=record.label, runner=record.runner, device=record.device_id,
                  batch=record.batch, end_to_end_ms=record.median_ms, peaks=peaks, precision=record.precision)


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


def unavailable_layers(profile) -> list[str]:
    """``label bB runner: why`` for every record whose per-layer times could not be measured."""
    out = []
    for r in profile.records:
        bd = getattr(r, "layers", None)
        if isinstance(bd, LayerBreakdown) and bd.error:
            out.append(f"{r.label} b{r.batch} {r.runner}: {bd.error}")
    return out


def changed_layers(pairs, top: int = 5) -> list[dict]:
    """For joined (base, current) records that both have layer breakdowns: the layers whose time
    changed most, absolute and relative (see :func:`diff`)."""
    out = []
    for base, cur in pairs:
        if has_rows(getattr(base, "layers", None)) and has_rows(getattr(cur, "layers", None)):
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
