"""Rendering of a profile (CLI layer): the answer first (hwprofile.report._summary), then its records, whether runtime
follows activations or flops, the equal-flops contrast, growth per strategy."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from hwprofile.analysis import (
    BYTE_MODEL,
    CONFIDENCE,
    MIN_GROWTH,
    MIN_MODELS,
    NEAR_ROOF,
    GroupAnswer,
    answer,
    by_group,
    equal_flops,
    left_out_text,
    strategy_growth,
)
from hwprofile.cli._output import ALWAYS, Column, Table, View, emit, factor, interval, ms, num, ratio, si
from hwprofile.profile import Profile, count_rows
from hwprofile.report import record_rows as typed_record_rows
from hwprofile.report import show_json as typed_show_json
from hwprofile.report import summarize


def _cores(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} cores"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _share(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%!" if v > 1.0 else f"{v * 100:.1f}%"


def _quality(row: dict) -> str:
    """The record's quality (``*``: assessed now), the status of a record that is not ok: never a plain ``ok``."""
    q = row.get("quality")
    if q is None:
        return row["status"] if row.get("status") not in (None, "ok") else "-"
    return q if row.get("quality_recorded") else f"{q}*"


def record_rows(profile: Profile) -> list[dict]:
    return [r.model_dump() for r in typed_record_rows(profile)]


def records_table(profile: Profile) -> Table:
    rows = record_rows(profile)
    notes = ["quality: clean | noisy | disturbed (docs/measurement.md), or the status of a record that is not ok; "
             "disturbed and not-ok records are left out of every fit, table and prediction; * = assessed now from "
             "the readings the record stores (it predates record quality); why: the status reason, or what made "
             "it not clean"]
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
    notes += energy_notes(rows)
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
        Column("compute_share", "% compute", _share, priority=4), Column("bandwidth_share", "% bw", _share, priority=4),
        Column("roof", "roof", priority=5), *energy_columns(rows), Column("why", "why", priority=1, wrap=28)),
        [{**r, "quality": _quality(r)} for r in rows], notes=tuple(notes), name="records")


#: the energy columns (shown only when some record holds an energy reading, and then soon after the latency)
ENERGY_COLUMNS = (Column("joules_per_image", "J/img", num, priority=2), Column("mean_watts", "W", num, priority=3))


def energy_columns(rows: list[dict]) -> tuple[Column, ...]:
    """The energy columns when any row has a reading, else none."""
    return ENERGY_COLUMNS if any(r.get("joules_per_image") is not None for r in rows) else ()


def energy_notes(rows: list[dict]) -> list[str]:
    """What the energy columns measured, or why no record has energy (hwprofile.trackers.energy)."""
    meters = sorted({r["energy_meter"] for r in rows if r.get("energy_meter")})
    if meters:
        return [f"J/img, W: energy per image and mean power over the throughput window (at least 1 s), from "
                f"{', '.join(meters)}: device- or package-wide counters, so other work there counts too"]
    reasons = sorted({r["energy_reason"] for r in rows if r.get("energy_reason")})
    return [f"energy: not measured ({'; '.join(reasons)})"] if reasons else []


def _ci(v) -> str:
    return interval(v)


def _excluded(v) -> str:
    if not v:
        return "0"
    kinds: dict[str, int] = {}
    for e in v:
        kind = e["quality"] if e["status"] == "ok" else e["status"]
        kinds[kind] = kinds.get(kind, 0) + 1
    return f"{len(v)} (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")"


def estimate_text(e: dict | None) -> str:
    """``0.47 [0.36, 0.59]``."""
    return "-" if not e else f"{e['value']:.2f} {_ci(e['ci'])}"


def verdict_text(row: dict) -> str:
    return row["verdict"]


def _loo(row: dict) -> str:
    j, a = row["loo_pct"]["joint"], row["loo_pct"]["additive"]
    return "-" if j is None and a is None else f"{num(j, 2)} / {num(a, 2)}"


def row_label(row: dict) -> str:
    return f"{row['runner']} b{row['batch']} {row['mode']}"


def reading_lines(rows: list[dict]) -> list[str]:
    """Per row: the share of time with activations and the fitted law; the basis; what would decide it."""
    lines = []
    for row in rows:
        head = f"{row_label(row)}: {row['verdict']}"
        lines.append(head + (f"; {row['reading']}" if row.get("reading") else "") + f" ({row['basis']})")
        bp = row.get("beta_params")
        if bp and (bp["ci"][0] > 0 or bp["ci"][1] < 0):
            lines.append(f"  params: β_params {estimate_text(bp)} in a flops + acts + params fit: weights carry "
                         "time of their own")
        if row.get("decide") or row.get("note"):
            lines.append(f"  to decide: {row['decide']['text'] if row.get('decide') else row['note']}")
    return lines


def follows_rows(answers: Sequence[GroupAnswer]) -> list[dict]:
    """The rows of the follows table from :func:`hwprofile.analysis.answer`'s answers."""
    rows = [a.to_dict() for a in answers]
    for row in rows:
        row["verdict_text"] = verdict_text(row)
        row["loo_text"] = _loo(row)
        for k in ("beta_flops", "beta_acts", "delta"):
            row[f"{k}_text"] = estimate_text(row.get(k))
        row["r_flops"], row["r_acts"] = row["r"].get("flops"), row["r"].get("acts")
    return rows


FOLLOWS_COLUMNS = (
    Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
    Column("mode", "mode", priority=5), Column("n", "n", priority=3),
    Column("excluded", "excluded", _excluded, priority=4), Column("beta_flops_text", "β flops [CI]", priority=1),
    Column("beta_acts_text", "β acts [CI]", priority=1), Column("delta_text", "δ [CI]", priority=ALWAYS),
    Column("r_flops", "r flops", num, priority=5), Column("r_acts", "r acts", num, priority=5),
    Column("r2_joint", "R²", num, priority=4), Column("loo_text", "LOO % j/a", priority=4),
    Column("verdict_text", "verdict", priority=ALWAYS))

FOLLOWS_NOTES = (
    f"n: usable records, clean and noisy, each weighted by its measured spread (a group needs {MIN_MODELS}); "
    "excluded: disturbed or not ok (show --json lists them with why); β: elasticity of latency in the joint fit "
    f"log t = k + β_flops log flops + β_acts log acts, {CONFIDENCE:.0%} t-intervals; δ = β_acts - β_flops; r: "
    "Pearson r of log latency with log flops / log acts; R²: of the joint fit; LOO % j/a: median leave-one-out "
    "error of the joint log-log / additive fit",
    "verdict: acts (flops) when δ's interval lies above (below) 0 and β_acts's (β_flops's) above 0; both when "
    f"δ's holds 0 and both β's lie above 0; neither when both β's lie below {MIN_GROWTH:g}; else not "
    "distinguishable (docs/measurement.md); share of time: the additive fit t = a·flops + b·acts + c")

IMPORTED_NOTE = ("imported records (runner imported:...; hwprofile import): one figure per row of someone else's "
                 "table, no repeats and no spread, so each weighs the same in every fit; never graded for quality "
                 "and never gated against measured records unless asked")


def follows(profile: Profile, answers: Sequence[GroupAnswer] | None = None) -> Table:
    answers = answer(profile.records) if answers is None else answers
    rows = [r for r in follows_rows(answers) if r["n_total"] > 1]  # one model: no question
    imported = (IMPORTED_NOTE,) if any(r.imported for r in profile.records) else ()
    return Table("Does runtime follow activations or flops? Per runner and batch: the joint fit and its verdict",
                 FOLLOWS_COLUMNS, rows, name="follows",
                 notes=(*reading_lines(rows), "", *FOLLOWS_NOTES, *imported) if rows else ())


def left_out_note(profile: Profile) -> tuple[str, ...]:
    """The note of a table over the usable records when some records were left out (the quality policy)."""
    excluded = [e for u in by_group(profile.records).values() for e in u.excluded]
    return (f"left out: {len(excluded)} record{'s' * (len(excluded) > 1)} ({left_out_text(excluded)}; the Records "
            "table marks them): this table uses the clean and noisy records only",) if excluded else ()


def ratio_ci_text(e: dict) -> str:
    return f"{e['value']:.2f}x [{e['ci'][0]:.2f}, {e['ci'][1]:.2f}]"


CONTRAST_COLUMNS = (Column("scale", "s", factor, priority=ALWAYS), Column("pair", "vs w", priority=ALWAYS),
                    Column("latency_text", "latency [CI]", priority=ALWAYS),
                    Column("flops_ratio", "flops", ratio, priority=1), Column("acts_ratio", "acts", ratio, priority=1))
CONTRAST_NOTE = (f"latency of each strategy / latency of w at the same s, {CONFIDENCE:.0%} interval from the "
                 "group's noise (docs/measurement.md); flops and acts: the same ratios of the counts")


def contrast_rows(records) -> list[dict]:
    rows = [c.to_dict() for c in equal_flops(records)]
    for r in rows:
        r["pair"] = f"{r['strategy']}/{r['reference']}"
        r["latency_text"] = ratio_ci_text(r["latency_ratio"])
    return rows


def contrast(profile: Profile) -> Table:
    rows = contrast_rows(profile.records)
    return Table("At equal flops: latency relative to w (the paper's point)",
                 (Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
                  Column("mode", "mode", priority=4), *CONTRAST_COLUMNS),
                 rows, name="contrast", notes=(CONTRAST_NOTE, *left_out_note(profile)) if rows else ())


def _exponent(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def growth(profile: Profile) -> Table:
    rows = strategy_growth(profile.records)
    return Table("Per strategy: latency growth beside flops and acts growth (ratios to the base model)", (
        Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
        Column("mode", "mode", priority=4), Column("strategy", "strategy", priority=ALWAYS),
        Column("scale", "s", factor, priority=ALWAYS), Column("flops_ratio", "flops", ratio, priority=1),
        Column("acts_ratio", "acts", ratio, priority=1), Column("latency_ratio", "latency", ratio, priority=ALWAYS),
        Column("latency_exponent", "latency ~ flops^e", _exponent, priority=2)), rows, name="growth",
        notes=left_out_note(profile) if rows else ())



def _ratio3(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def imported_counts(profile: Profile) -> Table | None:
    """Imported records of zoo models: the table's counts beside hwprofile's (None if there are none)."""
    rows = count_rows(profile.records)
    if not rows:
        return None
    return Table("Imported records of zoo models: the table's counts beside hwprofile's (per image; flops = "
                 "multiply-adds)", (
                     Column("model", "model", priority=ALWAYS), Column("zoo_model", "zoo model", priority=ALWAYS),
                     Column("resolution", "px", priority=1), Column("flops_table", "flops table", si, priority=3),
                     Column("flops_hwprofile", "flops hwprofile", si, priority=3),
                     Column("flops_ratio", "table/hw", _ratio3, priority=1),
                     Column("params_ratio", "params table/hw", _ratio3, priority=2),
                     Column("acts_table", "acts table", si, priority=3),
                     Column("acts_hwprofile", "acts hwprofile", si, priority=3),
                     Column("acts_ratio", "table/hw", _ratio3, priority=1)), rows, name="counts",
                 notes=("the counting conventions differ: docs/results.md, 'Counting conventions'",))


def tables(profile: Profile, answers: Sequence[GroupAnswer] | None = None) -> list[Table]:
    """The records (and an imported table's counts); whether runtime follows activations or flops, the
    equal-flops contrast and per-strategy growth where the profile holds more than one model per group (a
    one-model sweep has no such question: no empty tables)."""
    counts = imported_counts(profile)
    return [t for t in (records_table(profile), *([counts] if counts else []), follows(profile, answers),
                        contrast(profile), growth(profile)) if t.rows or t.name == "records"]


def payload(profile: Profile, path: str | None = None, answers: Sequence[GroupAnswer] | None = None) -> dict:
    """``show --json`` (and ``run --json``): :class:`hwprofile.report._outputs.ShowOutput` as plain data."""
    return typed_show_json(profile, path, answers)


def report(profile: Profile, view: View, path: str | None = None, extra: dict | None = None) -> None:
    """Print a profile as ``show`` and ``run`` do: the answer first, then the tables (or the JSON, with
    ``extra`` added); the verdicts are computed once."""
    answers = answer(profile.records)
    if view.format == "json":
        emit([], view, {**payload(profile, path, answers), **(extra or {})})
        return
    lines = summary_lines(summarize(profile, answers, path).to_dict(), view.width)
    emit(tables(profile, answers), view, None, preface=lines)


# ------------------------------------------------------------------------------------------------ the answer first

SUMMARY_TITLE = "The answer, per runner and batch: does runtime follow activations or flops?"


def _label(row: dict, vary: set[str]) -> str:
    parts = [row["device_id"]] if "device_id" in vary else []
    parts += [row["runner"], f"b{row['batch']}"]
    parts += [row[k] for k in ("precision", "mode") if k in vary]
    return " ".join(str(p) for p in parts)


def _verdict(row: dict) -> str:
    if not row["fitted"]:
        return "no fit"
    if row["decided"] or row["verdict"] == "neither":
        return row["verdict"]
    return row["verdict"] + (f", leans {row['leans']}" if row.get("leans") else "")


def _share_text(e: dict | None) -> str:
    if not e:
        return "-"
    return f"{100 * e['value']:.0f}% [{100 * e['ci'][0]:.0f}, {100 * e['ci'][1]:.0f}] of time with acts"


def _used(row: dict) -> str:
    left = ", ".join(f"{n} {k}" for k, n in row["left_out"].items())
    return f"{row['n_used']} of {row['n_total']} records" + (f" ({left} left out)" if left else "")


def _to_decide(row: dict) -> str | None:
    text = row.get("to_decide")
    if not text:
        return None
    prefix = f"leans {row.get('leans')}; expected to decide: "
    return text[len(prefix):] if text.startswith(prefix) else text


def command_lines(command: Sequence[str], width: int | None, indent: int = 4) -> list[str]:
    """A command on as many lines as ``width`` needs, each but the last ending in `` \\`` (it pastes into a
    shell as it is); its arguments are never split."""
    words = [shlex.quote(w) for w in command]
    lead, more = " " * indent, " " * (indent + 2)
    if width is None:
        return [lead + " ".join(words)]
    lines, current = [], lead + words[0]
    for w in words[1:]:
        if len(current) + 1 + len(w) + 2 <= width:
            current += " " + w
        else:
            lines.append(current + " \\")
            current = more + w
    return lines + [current]


def summary_lines(summary: dict, width: int | None) -> list[str]:
    """The answer first (``hwprofile.report._summary``): a title and a line per group (verdict, share of time with
    activations and its interval, the records used), what is expected to decide an undecided one, and the
    commands that get there; or one line for a profile without an answer."""
    if summary["kind"] != "answer":
        lines = [summary["line"]]
    else:
        rows = summary["rows"]
        vary = {k for k in ("device_id", "precision", "mode") if len({r[k] for r in rows}) > 1}
        same = [rows[0][k] for k, plain in (("precision", "fp32"), ("mode", "infer"))
                if k not in vary and rows[0][k] != plain]  # said once, in the title
        cells = [(_label(r, vary), _verdict(r), _share_text(r["share_acts"]), _used(r)) for r in rows]
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        title = SUMMARY_TITLE.replace(" and batch:", f" and batch ({', '.join(same)}):") if same else SUMMARY_TITLE
        lines = [title]
        for r, c in zip(rows, cells):
            lines.append("  " + "  ".join(text.ljust(w) for text, w in zip(c[:3], widths)) + "  " + c[3])
            todo = _to_decide(r)
            if todo:
                lines.append(f"    to decide: {todo}")
    for action in summary["actions"]:
        lines.append(f"  {action['why']}:")
        lines += command_lines(action["command"], width)
    return lines
