"""``hwprofile compare A.json B.json [...]``: ratios between saved device profiles, with intervals."""

from __future__ import annotations

import argparse
import sys

from hwprofile.analysis import (
    ABSetting,
    ab_setting,
    ab_sides,
    ab_split,
    ab_text,
    changed_layers,
    compare_sides,
    join,
    sides,
    summarize,
)
from hwprofile.cli._check_tables import layer_changes_table
from hwprofile.cli._common import seed_arg
from hwprofile.cli._output import ALWAYS, Column, Table, add_format_args, emit, sig, view_of
from hwprofile.cli._report import (
    CONTRAST_COLUMNS,
    CONTRAST_NOTE,
    FOLLOWS_COLUMNS,
    estimate_text,
    ratio_ci_text,
    reading_lines,
    verdict_text,
)
from hwprofile.errors import ConfigError
from hwprofile.gate import DRIFT_FLOOR, device_type
from hwprofile.profile import Profile, preferred_memory


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare saved profiles: latency, throughput and memory ratios with CIs",
                       description="Joins records on (model, strategy, scale, batch, runner, precision, mode) and "
                                   "prints current/base ratios; the first side is the base. A profile holding "
                                   "several devices (hwprofile merge) counts as one side per device.")
    p.add_argument("profiles", nargs="+", help="profile JSON files; the first device is the base")
    p.add_argument("--ab", metavar="SETTING[=A,B]",
                   help="a deliberate A/B comparison of one setting: threads, runner, precision or version; its "
                        "differences are allowed and named once (runner=torch:cpu,ort:cpu or precision=fp32,fp16 "
                        "picks each side's records; docs/comparability.md)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare even when settings that change results differ (backend versions, threads, "
                        "precision...: docs/comparability.md)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence of the intervals (default 0.95)")
    p.add_argument("--seed", type=seed_arg, default=0, help="bootstrap seed, 0 to 2**32-1 (default 0)")
    p.add_argument("--layers", action="store_true", help="also name the layers whose time changed most "
                                                         "(records measured with hwprofile run --layers)")
    add_format_args(p)
    p.set_defaults(handler=run)


def ratio_ci(r: dict | None) -> str:
    if not r:
        return "-"
    text = f"{r['ratio']:.3f}x"
    if r.get("ci_low") is not None:
        text += f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return text


def _ms(v: float | None) -> str:
    return sig(v, 4)


def _side_names(c: dict) -> tuple[str, str]:
    return ("A", "B") if c.get("ab") else ("base", "current")


def _state(quality: str | None, status: str) -> str:
    """A side's record for people: its quality, or its status when it is not ok (never a plain ``ok``)."""
    return status if status != "ok" else quality or "-"


def rows_table(c: dict) -> Table:
    a, b = _side_names(c)
    rows = []
    for r in c["rows"]:
        i, lat = r["identity"], r["latency"] or {}
        mem = _memory(r)
        rows.append({"model": r["label"], "runner": i["runner"], "batch": i["batch"], "mode": i["mode"],
                     "precision": i["precision"], "base_ms": lat.get("base"), "current_ms": lat.get("current"),
                     "latency": r["latency"], "throughput": r["throughput"], "memory": mem, "energy": r.get("energy"),
                     "quality": f"{_state(r['base_quality'], r['base_status'])} / "
                                f"{_state(r['current_quality'], r['current_status'])}"
                                + ("" if r.get("base_used", True) and r.get("current_used", True) else " *")})
    if c.get("ab"):
        title = f"A/B {c['ab']}: A = {c['base']}, B = {c['current']} ({c['base_device']}); ratio = B / A"
    else:
        kind = f"cross-device: {c['base_device']} -> {c['current_device']}" if c["cross_device"] else c["base_device"]
        title = f"{c['base']} -> {c['current']} ({kind}); ratio = current / base"
    return Table(title, (
        Column("model", "model", priority=ALWAYS), Column("runner", "runner", priority=ALWAYS),
        Column("batch", "batch", priority=ALWAYS), Column("mode", "mode", priority=5),
        Column("precision", "precision", priority=5 if not c.get("ab") else 3),
        Column("base_ms", f"{a} ms", _ms, priority=2), Column("current_ms", f"{b} ms", _ms, priority=2),
        Column("latency", "latency ratio [CI]", ratio_ci, priority=ALWAYS),
        Column("throughput", "throughput ratio", ratio_ci, priority=4),
        Column("memory", "memory ratio", ratio_ci, priority=3), *_energy_columns(rows),
        Column("quality", "quality", priority=ALWAYS)),
        rows, notes=_notes(c), name="ratios")


def _energy_columns(rows: list[dict]) -> tuple[Column, ...]:
    """The joules-per-image ratio, a low-priority column shown only when some joined pair has energy on both sides."""
    return (Column("energy", "J/img ratio", ratio_ci, priority=5),) if any(r.get("energy") for r in rows) else ()


def _memory(row: dict) -> dict | None:
    by = {m["metric"].split(":", 1)[1]: m for m in row["memory"]}
    name = preferred_memory(by, fallback=True)
    return None if name is None else by[name]


def _notes(c: dict) -> tuple[str, ...]:
    a, b = _side_names(c)
    notes = []
    if c.get("ab"):
        notes.append(f"A/B difference ({c['ab']}, allowed): " + (c["deliberate_text"] or
                                                                 "none found in the records' settings"))
    methods = sorted({r["latency"]["method"] for r in c["rows"] if r["latency"]})
    if methods:
        conf = next(r["latency"]["confidence"] for r in c["rows"] if r["latency"])
        notes.append(f"latency: geometric mean of per-process medians; {conf:.0%} interval by {' / '.join(methods)}")
    notes.append(f"quality: {a} / {b} record's, clean | noisy | disturbed, or its status when it is not ok "
                 "(docs/measurement.md)")
    left = sum(1 for r in c["rows"] if not (r.get("base_used", True) and r.get("current_used", True)))
    if left:
        notes.append(f"*: left out of the geometric means ({left} pair{'s' * (left > 1)} with a side disturbed or "
                     "not ok: the quality policy of every reader)")
    if c["only_base"] or c["only_current"]:
        notes.append(f"not joined: {c['only_base']} records only in {a}, {c['only_current']} only in {b}")
    if any(r.get("energy") for r in c["rows"]):
        notes.append(f"J/img ratio: joules per image over the throughput window, {b} / {a} (one reading per "
                     "side, no interval; device- or package-wide counters)")
    notes += [f"warning: {m}" for m in c.get("warnings", [])]
    return tuple(notes)


def summary_table(c: dict) -> Table:
    a, b = ("A", "B") if c.get("ab") else (c["base"], c["current"])
    left = any(s.get("left_out") for s in c["summary"])
    return Table(f"Geometric means: {b} / {a}", (
        Column("runner", "runner", priority=ALWAYS), Column("records", "records", priority=1),
        *((Column("left_out", "left out", priority=1),) if left else ()),
        Column("latency", "latency [CI]", ratio_ci, priority=ALWAYS), Column("throughput", "throughput", ratio_ci),
        Column("memory", "memory", ratio_ci)), c["summary"], name="summary",
        notes=("records: the joined pairs whose records are both clean or noisy; left out: pairs with a side "
               "disturbed or not ok",) if left else ())


def follows_table(name: str, rows: list[dict]) -> Table:
    rows = [{**r, "verdict_text": verdict_text(r), "loo_text": None,
             **{f"{k}_text": estimate_text(r.get(k)) for k in ("beta_flops", "beta_acts", "delta")},
             "r_flops": r["r"].get("flops"), "r_acts": r["r"].get("acts")} for r in rows]
    cols = [c for c in FOLLOWS_COLUMNS if c.key not in ("loo_text", "r_flops", "r_acts")]
    return Table(f"Does runtime follow activations or flops on {name}? The joint fit per runner and batch", cols,
                 rows, name=f"follows-{name}",
                 notes=(*reading_lines(rows), "", "columns and verdict as in hwprofile show (docs/measurement.md)")
                 if rows else ("no runner and batch has a usable record",))


def contrast_table(sides: dict[str, list[dict]]) -> Table:
    """The equal-flops contrast of every device, the same pair of each next to each other."""
    rows = []
    for name, side in sides.items():
        for r in side:
            rows.append({**r, "side": name, "pair": f"{r['strategy']}/{r['reference']}",
                         "latency_text": ratio_ci_text(r["latency_ratio"])})
    rows.sort(key=lambda r: (r["batch"], r["mode"], r["model"], r["scale"], r["strategy"], r["runner"]))
    return Table("At equal flops, across devices: latency relative to w", (
        Column("batch", "batch", priority=ALWAYS), Column("mode", "mode", priority=4), *CONTRAST_COLUMNS[:2],
        Column("side", "device", priority=ALWAYS), Column("runner", "runner", priority=ALWAYS),
        *CONTRAST_COLUMNS[2:]), rows, name="contrast",
        notes=(CONTRAST_NOTE,) if rows else ("no strategy was measured beside w at the same s on either device",))


def load_sides(paths: list[str]):
    out = [s for path in paths for s in sides(Profile.load(path), path)]
    if len(out) < 2:
        raise ConfigError("compare needs two sides: give two profiles, or one profile holding two devices "
                          f"({', '.join(paths)} holds {len(out)} device with records)")
    return out


def parse_ab(text: str | None) -> tuple[ABSetting | None, tuple[str, ...]]:
    """``--ab threads`` or ``--ab runner=torch:cpu,ort:cpu``: the setting and the values each side keeps."""
    if text is None:
        return None, ()
    name, eq, values = text.partition("=")
    picked = tuple(v.strip() for v in values.split(",")) if eq else ()
    if eq and (len(picked) != 2 or not all(picked)):
        raise ConfigError(f"--ab {text!r}: expected SETTING or SETTING=A,B, e.g. runner=torch:cpu,ort:cpu")
    return ab_setting(name.strip()), picked


def comparisons(sides_, *, confidence: float, seed: int, allow_mismatch: bool, ab: ABSetting | None = None,
                ab_values: tuple[str, ...] = ()) -> list[dict]:
    """Each side after the first against the first, refusing meaningless comparisons. With ``ab``, the
    differences that make up that setting are allowed and named once (``deliberate``); every other
    difference is judged as usual. ``warnings``: each remaining difference once, rounded."""
    out = []
    for side in sides_[1:]:
        base, cur = ab_sides(sides_[0], side, ab, ab_values) if ab else (sides_[0], side)
        c = compare_sides(base, cur, confidence=confidence, seed=seed,
                          drift_floor=lambda runner: DRIFT_FLOOR[device_type(runner)], ab=ab)
        if not c.rows:
            raise ConfigError(f"{side.name} and {sides_[0].name} have no record in common (same model, strategy, "
                              "scale, batch, runner, precision and mode"
                              + (f", {ab.name} aside" if ab and ab.across else "") + ")")
        mine, rest = ab_split(c.mismatches, ab) if ab else ([], list(c.mismatches))
        refuse = summarize(m for m in rest if m.severity == "refuse")
        if refuse and not allow_mismatch:
            hint = "" if ab else " or --ab SETTING for a deliberate A/B comparison"
            raise ConfigError(f"{sides_[0].name} and {side.name} are not comparable: "
                              + "; ".join(m.text() for m in refuse[:4])
                              + (f" (+{len(refuse) - 4} more)" if len(refuse) > 4 else "")
                              + f" (pass --allow-mismatch to compare anyway{hint})")
        d = c.to_dict()
        d["deliberate"] = [m.text() for m in summarize(mine)]
        d["deliberate_text"] = ab_text(ab, mine, *(ab_values or _across_values(ab, d))) if ab else ""
        d["warnings"] = [m.text() for m in summarize(rest)]
        out.append(d)
    return out


def _across_values(ab: ABSetting, c: dict) -> tuple[str, ...]:
    """(A's value, B's value) of the identity field an A/B comparison joins across, when every row has the same."""
    if ab.across is None:
        return ()
    pairs = {str(r["identity"][ab.across]).partition(">")[::2] for r in c["rows"]}
    return tuple(pairs.pop()) if len(pairs) == 1 else ()


def run(args: argparse.Namespace) -> int:
    if not 0.5 <= args.confidence < 1:
        raise ConfigError(f"--confidence {args.confidence}: expected a number in [0.5, 1), e.g. 0.95")
    ab, ab_values = parse_ab(args.ab)
    sides_ = load_sides(args.profiles)
    results = comparisons(sides_, confidence=args.confidence, seed=args.seed, allow_mismatch=args.allow_mismatch,
                          ab=ab, ab_values=ab_values)
    view = view_of(args)
    tables = []
    layer_tables = _layer_tables(sides_, results) if args.layers else []
    for c in results:
        tables += [rows_table(c), summary_table(c)]
        tables += [follows_table(name, rows) for name, rows in c["follows"].items()]
        if c["contrast"]:
            tables.append(contrast_table(c["contrast"]))
        if view.format == "csv":  # CSV has no room for notes: the warnings go to stderr, once
            for w in c["warnings"]:
                sys.stderr.write(f"warning: {c['base']} -> {c['current']}: {w}\n")
    tables += layer_tables
    emit(tables, view, {"comparisons": results})
    return 0


def _layer_tables(sides_, results: list[dict]) -> list[Table]:
    tables = []
    for side, c in zip(sides_[1:], results):
        j = join(sides_[0].records, side.records, cross_device=sides_[0].device_id != side.device_id)
        found = changed_layers(j.pairs)
        c["layer_changes"] = found
        if found:
            tables.append(layer_changes_table(found, f"Layers whose time changed most: {side.name} vs "
                                                     f"{sides_[0].name}"))
    if not any(c["layer_changes"] for c in results):
        raise ConfigError("--layers: no joined record has a layer breakdown on both sides (measure with "
                          "hwprofile run --layers)")
    return tables
