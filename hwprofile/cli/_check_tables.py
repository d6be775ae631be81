"""The tables of ``hwprofile check``: verdicts, the layers that changed, a first baseline, an A/A calibration."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from hwprofile.analysis import changes_table_rows
from hwprofile.cli._output import ALWAYS, Column, Table, sig
from hwprofile.gate import DRIFT_FLOOR, MIN_SESSIONS_TO_TIGHTEN, CalibrationResult, GateResult, Verdict


def _r(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def threshold_notes(result: GateResult, sessions: int) -> str:
    """Which threshold each runner and metric was held to, and where it came from."""
    c, seen = result.config, {}
    for v in result.verdicts:
        metric = v.metric.split(":", 1)[0]
        if v.threshold is not None and (v.identity["runner"], metric) not in seen:
            seen[(v.identity["runner"], metric)] = (v.threshold, c.threshold_source(metric, v.identity["runner"]))
    said = {"option": "given", "calibrated": f"calibrated on this device from {sessions} A/A session"
                                              f"{'s' if sessions != 1 else ''}" + (
                                                  "; not below the default before "
                                                  f"{MIN_SESSIONS_TO_TIGHTEN}" if sessions < MIN_SESSIONS_TO_TIGHTEN
                                                  else ""),
            "default": "default for the device type; not calibrated here (hwprofile check --calibrate)"}
    return "thresholds: " + "; ".join(f"{runner} {metric} {t:.0%} ({said[src]})"
                                       for (runner, metric), (t, src) in sorted(seen.items()))


def verdict_table(result: GateResult, title: str, sessions: int = 0, extra_notes: tuple[str, ...] = ()) -> Table:
    rows = []
    for v in result.verdicts:
        i = v.identity
        limit = None if v.threshold is None else (1 - v.threshold if v.metric == "throughput" else 1 + v.threshold)
        rows.append({"status": v.status.upper() if v.status in ("regression", "failed") else v.status,
                     "model": v.label, "runner": i["runner"], "batch": i["batch"], "mode": i["mode"],
                     "metric": v.metric, "ratio": v.ratio,
                     "ci": None if v.ci_low is None else f"[{v.ci_low:.3f}, {v.ci_high:.3f}]",
                     "limit": limit, "processes": "/".join(map(str, v.processes)) if v.processes[0] else None,
                     "note": v.reason if v.ratio is None else (v.reason or None), "text": describe(v)})
    counts = ", ".join(f"{n} {s}" for s, n in result.counts().items())
    c = result.config
    notes: tuple[str, ...] = (
        f"{counts}. Ratio = current / baseline of the geometric mean of per-process medians (latency); "
        f"{c.confidence:.0%} bootstrap interval over processes; a record regresses when the interval lies "
        "wholly beyond the limit. processes = baseline/current.",)
    if any(v.threshold is not None for v in result.verdicts):
        notes += (threshold_notes(result, sessions),)
    if result.remeasured:
        notes += (f"re-measured before deciding: {len(result.remeasured)} records",)
    if any(v.ratio is not None and 0 < min(v.processes) < 2 for v in result.verdicts):
        floors = ", ".join(f"{k} {v[1]:.1%}" for k, v in DRIFT_FLOOR.items())
        notes += ("some records were measured in a single process: their drift between processes is assumed "
                  f"({floors}); measure with --repeats 3 or more",)
    notes += tuple(n for n in extra_notes if n)
    return Table(title, (Column("status", "status", priority=ALWAYS), Column("model", "model", priority=ALWAYS),
                         Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
                         Column("mode", "mode", priority=4), Column("metric", "metric", priority=1),
                         Column("ratio", "ratio", _r, priority=1), Column("ci", "interval", priority=1),
                         Column("limit", "limit", _r, priority=2), Column("processes", "processes", priority=3),
                         Column("note", "note", priority=1)), rows, notes=notes, name="verdicts")


def layer_changes_table(found: list[dict], title: str = "Layers whose time changed most (regressed records)") -> Table:
    return Table(title, (Column("model", "model", priority=ALWAYS), Column("runner", "runner", priority=ALWAYS),
                         Column("batch", "batch", priority=ALWAYS), Column("layer", "layer", priority=ALWAYS),
                         Column("op_type", "op", priority=2), Column("base_ms", "base ms", sig),
                         Column("current_ms", "current ms", sig), Column("delta_ms", "change ms", sig, priority=1),
                         Column("ratio", "ratio", lambda v: "-" if v is None else f"{v:.2f}x", priority=1)),
                 changes_table_rows(found), notes=("per-layer times from hwprofile run --layers; rows matched "
                                                   "by layer name",), name="layer-changes")


def baseline_created_table(row: dict) -> Table:
    return Table("hwprofile check: PASS (first use: baseline created)",
                 [Column(k, k.replace("_", " ")) for k in row], [row])


def calibration_table(cal: CalibrationResult) -> Table:
    """One A/A session: each runner and metric's drift, and its threshold before and after."""
    rows = [{"runner": o.runner, "metric": o.metric, "records": o.records, "drift_median": o.drift_median,
             "drift_max": o.drift_max, "outside": f"{o.outside}/{o.records}",
             "before": cal.before[o.runner][o.metric], "threshold": cal.thresholds[o.runner][o.metric]}
            for o in cal.session.observations]
    n = cal.sessions
    notes: tuple[str, ...] = (f"A/A drift = max(r, 1/r) - 1 of each record's A/A ratio r; outside CI = records whose "
             f"{cal.confidence:.0%} interval excluded 1 (drift the interval did not cover); threshold = the largest "
             f"drift over this device's {n} A/A session{'s' if n != 1 else ''}, rounded up (1% to 99%), "
             f"never below the device type's default before {MIN_SESSIONS_TO_TIGHTEN} sessions. "
             "Saved in the baseline; check uses it unless a --*-threshold option is given.",
             f"a later A/A session drifts beyond the largest of {n} with probability about 1/{n + 1} (the sessions "
             "being alike): calibrate 5 or more times, at other times of day and load, before trusting it",)
    if cal.saturated:
        notes += ("a threshold reached 99%: this machine drifts too much to gate; run the gate on a quieter one",)
    return Table(f"hwprofile check --calibrate: {cal.device_id}, A/A session {n} saved to {cal.baseline}",
                 (Column("runner", "runner", priority=ALWAYS), Column("metric", "metric", priority=ALWAYS),
                  Column("records", "records"), Column("drift_median", "median drift", _pct),
                  Column("drift_max", "max drift", _pct, priority=1), Column("outside", "outside CI", priority=1),
                  Column("before", "threshold was", _pct, priority=1),
                  Column("threshold", "threshold now", _pct, priority=ALWAYS)), rows, notes=notes, name="calibration")


def junit_xml(result: GateResult, suite: str = "hwprofile.check") -> str:
    """JUnit XML: one test case per record and metric; regressions fail, failed measurements error."""
    cases = list(result.verdicts)
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)),
                       failures=str(len(result.having("regression"))), errors=str(len(result.having("failed"))),
                       skipped=str(len(result.having("missing", "new"))))
    for v in cases:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{v.identity['runner']}", name=v.name)
        text = describe(v)
        if v.status == "regression":
            ET.SubElement(tc, "failure", message=text, type="regression").text = text
        elif v.status == "failed":
            ET.SubElement(tc, "error", message=text, type="measurement-failure").text = text
        elif v.status in ("missing", "new"):
            ET.SubElement(tc, "skipped", message=text)
        else:
            ET.SubElement(tc, "system-out").text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def describe(v: Verdict) -> str:
    """One line: ``latency 1.18x [1.12, 1.25] vs limit 1.05: regression``."""
    if v.ratio is None:
        return f"{v.status}: {v.reason}"
    ci = f" [{v.ci_low:.3f}, {v.ci_high:.3f}]" if v.ci_low is not None and v.ci_high is not None else ""
    limit = "" if v.threshold is None else (
        f" vs limit {1 - v.threshold:.3f}" if v.metric == "throughput" else f" vs limit {1 + v.threshold:.3f}")
    extra = f" ({v.reason})" if v.reason else ""
    return f"{v.metric} {v.ratio:.3f}x{ci}{limit}: {v.status}{extra}"
