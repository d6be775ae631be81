"""Rendering of a profile (CLI layer): its records, whether runtime follows activations, growth per strategy."""

from __future__ import annotations

from ..analysis import CONFIDENCE, MIN_CLEAN, follows_table, strategy_growth
from ..profile import Profile, Record
from ..quality import of
from ..roofline import BYTE_MODEL, NEAR_ROOF, record_peaks, roof, shares
from ._output import Column, Table, num, ratio, si


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _cores(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} cores"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _share(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%!" if v > 1.0 else f"{v * 100:.1f}%"


def record_row(r: Record, peaks: dict | None = None) -> dict:
    lat = r.latency
    mem, mem_name = r.memory_mb()
    q = of(r)
    share = shares(r, peaks)
    return {"model": r.label, "device_id": r.device_id, "runner": r.runner, "batch": r.batch,
            "precision": r.precision, "mode": r.mode, "status": r.status,
            "median_ms": lat and lat.median_ms, "p90_ms": lat and lat.p90_ms, "cv": lat and lat.cv,
            "repeats": lat and lat.repeats, "noisy": lat and lat.noisy,
            "throughput_per_s": r.throughput.samples_per_s if r.throughput else None,
            "memory_mb": mem, "memory_metric": mem_name, "foreign_cpu_cores": r.foreign_load,
            "flops": r.flops, "acts": r.acts,
            "quality": None if q is None else q.quality, "quality_reasons": [] if q is None else list(q.reasons),
            "quality_recorded": r.quality is not None,
            "compute_share": share["compute_share"], "bandwidth_share": share["bandwidth_share"],
            "compute_peak": share["compute_peak"], "above_peak": share["above_peak"],
            "peaks_disturbed": share["peaks_disturbed"], "roof": "above" if share["above_peak"] else roof(share),
            "reason": r.reason}


def _reason(row: dict) -> str | None:
    """The status reason, else why the record is not clean."""
    return row["reason"] or ("; ".join(row["quality_reasons"]) or None)


def _quality(row: dict) -> str:
    q = row.get("quality")
    return "-" if q is None else q if row.get("quality_recorded") else f"{q}*"


def record_rows(profile: Profile) -> list[dict]:
    rows = [record_row(r, record_peaks(profile, r)) for r in profile.records]
    for row in rows:
        row["why"] = _reason(row)
    return rows


def records_table(profile: Profile) -> Table:
    rows = record_rows(profile)
    notes = ["quality: clean | noisy | disturbed (docs/measurement.md); * = assessed now from the readings the "
             "record stores (it predates record quality); why: the status reason, or what made it not clean"]
    if any(r["memory_metric"] for r in rows):
        notes.append("mem MB: " + ", ".join(sorted({r["memory_metric"] for r in rows if r["memory_metric"]})) +
                     " (definitions are in each record's memory field); other load: CPU cores other processes "
                     "kept busy during the measurement")
    notes.append(f"% compute: 2 x flops x batch / latency / the device's peak matmul FLOP/s at the precision and "
                 f"the record's thread count; % bw: activation traffic ({BYTE_MODEL}) / latency / copy bandwidth; "
                 f"roof: the peak a record reaches {NEAR_ROOF:.0%} of" + (
                     "" if any(r["compute_share"] is not None for r in rows) else
                     " (this profile holds no device peaks at its records' thread count)"))
    if any(r["above_peak"] for r in rows):
        notes.append("!: above the measured peak, so no share of the hardware (the peak was measured too low, or "
                     "the activations stayed in cache); roof 'above'")
    if any(r["peaks_disturbed"] for r in rows):
        notes.append("the device peaks were measured while other processes kept the CPU busy: they are too low "
                     "and every share too high")
    return Table("Records (latency per batch; flops and acts per image, flops = multiply-adds)", (
        Column("model", "model"), Column("runner", "runner"), Column("batch", "batch"), Column("mode", "mode"),
        Column("status", "status"), Column("quality", "quality"), Column("median_ms", "median ms", _ms),
        Column("p90_ms", "p90 ms", _ms), Column("cv", "cv", _pct), Column("foreign_cpu_cores", "other load", _cores),
        Column("throughput_per_s", "img/s", num), Column("memory_mb", "mem MB", num),
        Column("flops", "flops", si), Column("acts", "acts", si), Column("compute_share", "% compute", _share),
        Column("bandwidth_share", "% bw", _share), Column("roof", "roof"), Column("why", "why")),
        [{**r, "quality": _quality(r)} for r in rows], notes=tuple(notes))


def _ci(v) -> str:
    return "-" if not v else f"[{v[0]:.2f}, {v[1]:.2f}]"


def _excluded(v) -> str:
    if not v:
        return "0"
    kinds = {}
    for e in v:
        kinds[e["quality"]] = kinds.get(e["quality"], 0) + 1
    return f"{len(v)} (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")"


def verdict_text(row: dict) -> str:
    """``acts [0.07, 0.49]``, or what kept the row from a verdict."""
    if row.get("verdict") is None:
        return row.get("note") or "-"
    return f"{row['verdict']} {_ci(row.get('verdict_ci'))}"


def follows_rows(records) -> list[dict]:
    rows = follows_table(records)
    for row in rows:
        ws = row.get("within_scale") or {}
        row["verdict_text"] = verdict_text(row)
        row["within_text"] = ("-" if not ws else f"{num(ws.get('rho_acts'))} / {num(ws.get('rho_flops'))} "
                              f"{_ci(ws.get('diff_ci'))}")
        row["e_acts_text"] = "-" if row.get("exponent_acts") is None else (
            f"{row['exponent_acts']:.2f} {_ci(row.get('exponent_ci_acts'))}")
        row["e_flops_text"] = "-" if row.get("exponent_flops") is None else (
            f"{row['exponent_flops']:.2f} {_ci(row.get('exponent_ci_flops'))}")
    return rows


def follows(profile: Profile) -> Table:
    rows = follows_rows(profile.records)
    bases = sorted({r["verdict_basis"] for r in rows if r.get("verdict_basis")})
    return Table("Does runtime follow activations? clean records: log latency vs log flops / params / acts", (
        Column("runner", "runner"), Column("batch", "batch"), Column("mode", "mode"), Column("n", "n"),
        Column("excluded", "excluded", _excluded), Column("r2_flops", "R² flops", num),
        Column("r2_params", "R² params", num), Column("r2_acts", "R² acts", num),
        Column("e_flops_text", "e flops [CI]"), Column("e_acts_text", "e acts [CI]"),
        Column("r2_flops_acts", "R² flops+acts", num), Column("within_text", "within s: rho acts / flops [CI]"),
        Column("verdict_text", "verdict [CI]")), rows,
        notes=(f"n: clean records fitted (a group needs {MIN_CLEAN}); excluded: records not clean (show --json "
               "lists them with why); e: fitted exponent (latency ~ metric^e); within s: rank correlation of "
               "latency with acts / with flops among models of the same scale, pooled, and the interval of "
               f"their difference; intervals: {CONFIDENCE:.0%}, seeded bootstrap over models",
               "verdict: acts | flops | params | not distinguishable | neither; its interval is of: "
               + ("; ".join(bases) if bases else "-")))


def growth(profile: Profile) -> Table:
    rows = strategy_growth(profile.records)
    return Table("Per strategy: latency growth beside flops and acts growth (ratios to the base model)", (
        Column("runner", "runner"), Column("batch", "batch"), Column("mode", "mode"), Column("strategy", "strategy"),
        Column("scale", "s", num), Column("flops_ratio", "flops", ratio), Column("acts_ratio", "acts", ratio),
        Column("latency_ratio", "latency", ratio), Column("latency_exponent", "latency ~ flops^e", num)), rows)


def tables(profile: Profile) -> list[Table]:
    return [records_table(profile), follows(profile), growth(profile)]


def payload(profile: Profile) -> dict:
    return {"devices": profile.devices, "records": record_rows(profile),
            "follows": follows_table(profile.records), "growth": strategy_growth(profile.records)}
