"""Tables of a profile: the records, whether runtime follows activations, growth per strategy."""

from __future__ import annotations

from .analysis import follows_table, strategy_growth
from .cli._output import Column, Table, num, ratio, si
from .profile import Profile, Record

from .datatypes import MEMORY_PREFERENCE, preferred_memory  # noqa: F401  (the one rule; re-exported)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _cores(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} cores"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def memory_mb(r: Record) -> tuple[float | None, str | None]:
    name = preferred_memory(r.memory)
    return (None, None) if name is None else (r.memory[name].value_mb, name)


def foreign_load(r: Record) -> float | None:
    """Most CPU cores other processes kept busy during the record's measurement (None if not recorded)."""
    values = r.settings.foreign_cpu_cores or []
    return max(values) if values else None


def record_row(r: Record) -> dict:
    lat = r.latency
    mem, mem_name = memory_mb(r)
    return {"model": r.label, "device_id": r.device_id, "runner": r.runner, "batch": r.batch,
            "precision": r.precision, "mode": r.mode, "status": r.status,
            "median_ms": lat and lat.median_ms, "p90_ms": lat and lat.p90_ms, "cv": lat and lat.cv,
            "repeats": lat and lat.repeats, "noisy": lat and lat.noisy,
            "throughput_per_s": r.throughput.samples_per_s if r.throughput else None,
            "memory_mb": mem, "memory_metric": mem_name, "foreign_cpu_cores": foreign_load(r),
            "flops": r.flops, "acts": r.acts,
            "reason": r.reason}


def records_table(profile: Profile) -> Table:
    rows = [record_row(r) for r in profile.records]
    return Table("Records (latency per batch; flops and acts per image, flops = multiply-adds)", (
        Column("model", "model"), Column("runner", "runner"), Column("batch", "batch"), Column("mode", "mode"),
        Column("status", "status"), Column("median_ms", "median ms", _ms), Column("p90_ms", "p90 ms", _ms),
        Column("cv", "cv", _pct), Column("foreign_cpu_cores", "other load", _cores),
        Column("throughput_per_s", "img/s", num), Column("memory_mb", "mem MB", num),
        Column("flops", "flops", si), Column("acts", "acts", si), Column("reason", "reason")), rows,
        notes=("mem MB: " + ", ".join(sorted({r["memory_metric"] for r in rows if r["memory_metric"]})) +
               " (definitions are in each record's memory field); other load: CPU cores other processes "
               "kept busy during the measurement",) if any(r["memory_metric"] for r in rows) else ())


def follows(profile: Profile) -> Table:
    rows = follows_table(profile.records)
    return Table("Does runtime follow activations? log latency vs log flops / params / acts", (
        Column("runner", "runner"), Column("batch", "batch"), Column("mode", "mode"), Column("n", "n"),
        Column("r_flops", "r flops", num), Column("r_params", "r params", num), Column("r_acts", "r acts", num),
        Column("r2_flops", "R² flops", num), Column("r2_acts", "R² acts", num),
        Column("exponent_flops", "e flops", num), Column("exponent_acts", "e acts", num),
        Column("r2_flops_acts", "R² flops+acts", num), Column("best", "best predictor")), rows,
        notes=("r: Pearson correlation of logs; e: fitted exponent (latency ~ metric^e); "
               "R² flops+acts: two-variable log-log fit",))


def growth(profile: Profile) -> Table:
    rows = strategy_growth(profile.records)
    return Table("Per strategy: latency growth beside flops and acts growth (ratios to the base model)", (
        Column("runner", "runner"), Column("batch", "batch"), Column("mode", "mode"), Column("strategy", "strategy"),
        Column("scale", "s", num), Column("flops_ratio", "flops", ratio), Column("acts_ratio", "acts", ratio),
        Column("latency_ratio", "latency", ratio), Column("latency_exponent", "latency ~ flops^e", num)), rows)


def tables(profile: Profile) -> list[Table]:
    return [records_table(profile), follows(profile), growth(profile)]


def payload(profile: Profile) -> dict:
    return {"devices": profile.devices, "records": [record_row(r) for r in profile.records],
            "follows": follows_table(profile.records), "growth": strategy_growth(profile.records)}
