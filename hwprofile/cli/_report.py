"""Rendering of a profile (CLI layer): its records, whether runtime follows activations, growth per strategy."""

from __future__ import annotations

from ..analysis import CONFIDENCE, MIN_CLEAN, follows_table, strategy_growth
from .. import outputs
from ..profile import Profile
from ..roofline import BYTE_MODEL, NEAR_ROOF
from ._output import ALWAYS, Column, Table, factor, interval, ms, num, ratio, si


def _cores(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} cores"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _quality(row: dict) -> str:
    q = row.get("quality")
    return "-" if q is None else q if row.get("quality_recorded") else f"{q}*"


def record_rows(profile: Profile) -> list[dict]:
    return [r.model_dump() for r in outputs.record_rows(profile)]


def records_table(profile: Profile) -> Table:
    rows = record_rows(profile)
    notes = ["quality: clean | noisy | disturbed (docs/measurement.md); * = assessed now from the readings the "
             "record stores (it predates record quality); why: the status reason, or what made it not clean"]
    if any(r["memory_metric"] for r in rows):
        notes.append("mem MB: " + ", ".join(sorted({r["memory_metric"] for r in rows if r["memory_metric"]})) +
                     " (definitions are in each record's memory field); other load: CPU cores other processes "
                     "kept busy during the measurement")
    notes.append(f"% compute: 2 x flops x batch / latency / the device's peak matmul FLOP/s at the precision; "
                 f"% bw: activation traffic ({BYTE_MODEL}) / latency / copy bandwidth; roof: the peak a record "
                 f"reaches {NEAR_ROOF:.0%} of" + ("" if any(r["compute_share"] is not None for r in rows) else
                                                  " (this profile holds no device peaks)"))
    return Table("Records (latency per batch; flops and acts per image, flops = multiply-adds)", (
        Column("label", "model", priority=ALWAYS), Column("runner", "runner", priority=ALWAYS),
        Column("batch", "batch", priority=ALWAYS), Column("mode", "mode", priority=4),
        Column("status", "status", priority=3), Column("quality", "quality", priority=1),
        Column("median_ms", "median ms", ms, priority=1), Column("p50_ms", "p50 ms", ms, priority=6),
        Column("p90_ms", "p90 ms", ms, priority=3), Column("p95_ms", "p95 ms", ms, priority=6),
        Column("p99_ms", "p99 ms", ms, priority=5), Column("min_ms", "min ms", ms, priority=6),
        Column("mean_ms", "mean ms", ms, priority=6), Column("cv", "cv", _pct, priority=3),
        Column("foreign_cpu_cores", "other load", _cores, priority=4),
        Column("throughput_per_s", "img/s", num, priority=3), Column("memory_mb", "mem MB", num, priority=3),
        Column("flops", "flops", si, priority=2), Column("acts", "acts", si, priority=2),
        Column("compute_share", "% compute", _pct, priority=4), Column("bandwidth_share", "% bw", _pct, priority=4),
        Column("roof", "roof", priority=5), Column("why", "why", priority=1, wrap=28)),
        [{**r, "quality": _quality(r)} for r in rows], notes=tuple(notes), name="records")


def _ci(v) -> str:
    return interval(v)


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


def _exponent(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _rho(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def follows_rows(records) -> list[dict]:
    rows = follows_table(records)
    for row in rows:
        ws = row.get("within_scale") or {}
        row["verdict_text"] = verdict_text(row)
        row["within_text"] = ("-" if not ws else f"{_rho(ws.get('rho_acts'))} / {_rho(ws.get('rho_flops'))} "
                              f"{_ci(ws.get('diff_ci'))}")
        row["e_acts_text"] = "-" if row.get("exponent_acts") is None else (
            f"{row['exponent_acts']:.2f} {_ci(row.get('exponent_ci_acts'))}")
        row["e_flops_text"] = "-" if row.get("exponent_flops") is None else (
            f"{row['exponent_flops']:.2f} {_ci(row.get('exponent_ci_flops'))}")
    return rows


def follows(profile: Profile) -> Table:
    rows = [r for r in follows_rows(profile.records) if r["n"] + len(r["excluded"]) > 1]  # one model: no question
    bases = sorted({r["verdict_basis"] for r in rows if r.get("verdict_basis")})
    return Table("Does runtime follow activations? clean records: log latency vs log flops / params / acts", (
        Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
        Column("mode", "mode", priority=4), Column("n", "n", priority=1),
        Column("excluded", "excluded", _excluded, priority=4), Column("r2_flops", "R² flops", num, priority=3),
        Column("r2_params", "R² params", num, priority=5), Column("r2_acts", "R² acts", num, priority=3),
        Column("e_flops_text", "e flops [CI]", priority=2), Column("e_acts_text", "e acts [CI]", priority=2),
        Column("r2_flops_acts", "R² flops+acts", num, priority=5),
        Column("within_text", "within s: rho acts / flops [CI]", priority=4),
        Column("verdict_text", "verdict [CI]", priority=ALWAYS)), rows, name="follows",
        notes=(f"n: clean records fitted (a group needs {MIN_CLEAN}); excluded: records not clean (show --json "
               "lists them with why); e: fitted exponent (latency ~ metric^e); within s: rank correlation of "
               "latency with acts / with flops among models of the same scale, pooled, and the interval of "
               f"their difference; intervals: {CONFIDENCE:.0%}, seeded bootstrap over models",
               "verdict: acts | flops | params | not distinguishable | neither; its interval is of: "
               + ("; ".join(bases) if bases else "-")))


def growth(profile: Profile) -> Table:
    rows = strategy_growth(profile.records)
    return Table("Per strategy: latency growth beside flops and acts growth (ratios to the base model)", (
        Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
        Column("mode", "mode", priority=4), Column("strategy", "strategy", priority=ALWAYS),
        Column("scale", "s", factor, priority=ALWAYS), Column("flops_ratio", "flops", ratio, priority=1),
        Column("acts_ratio", "acts", ratio, priority=1), Column("latency_ratio", "latency", ratio, priority=ALWAYS),
        Column("latency_exponent", "latency ~ flops^e", _exponent, priority=2)), rows, name="growth")


def tables(profile: Profile) -> list[Table]:
    """The records; whether runtime follows activations and per-strategy growth where the profile holds more
    than one model per group (a one-model sweep has no such question: no empty tables)."""
    return [t for t in (records_table(profile), follows(profile), growth(profile)) if t.rows or t.name == "records"]


def payload(profile: Profile) -> dict:
    """``show --json`` (and ``run --json``): :class:`hwprofile.outputs.ShowOutput` as plain data."""
    return outputs.show_json(profile)
