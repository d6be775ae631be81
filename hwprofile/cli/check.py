"""``hwprofile check --baseline BASE.json [CURRENT.json | run options]``: the regression gate.

Parses the options, calls the library's :func:`hwprofile.check` or :func:`hwprofile.calibrate_gate`,
and renders the result.
Exit codes: 0 pass, 1 a regression, 2 invalid input, 3 environment or measurement failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import hwprofile
from hwprofile.atomic import write_text
from hwprofile.cli._check_tables import (
    baseline_created_table,
    calibration_table,
    junit_xml,
    layer_changes_table,
    verdict_table,
)
from hwprofile.cli._common import csv_list, seed_arg
from hwprofile.cli._output import Table, add_format_args, emit, render, view_of
from hwprofile.cli._run_args import add_run_args, config_from_args, run_options_given
from hwprofile.errors import ConfigError
from hwprofile.gate import GateOptions, GateResult
from hwprofile.report import check_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="regression gate: compare a profile (or a fresh run) with a baseline",
                       description="Without CURRENT.json, measures now with the run options. A record regresses "
                                   "when the confidence interval of its ratio lies wholly beyond the threshold. "
                                   "Exit 0 pass, 1 regression, 2 invalid input, 3 measurement failure.")
    p.add_argument("current", nargs="?", help="profile to check (default: measure now with the run options)")
    p.add_argument("--baseline", required=True, help="baseline profile (may hold several devices)")
    p.add_argument("--update-baseline", action="store_true",
                   help="create the baseline for this device if it has none; otherwise replace this device's "
                        "records in it when the gate passes")
    p.add_argument("--calibrate", action="store_true",
                   help="A/A calibration: with nothing changed since the baseline, measure it again (or read "
                        "CURRENT.json), store the drift in the baseline and set this device's thresholds from "
                        "it (the largest A/A drift of any record, rounded up); repeat at other times to widen it")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="gate against another device, or despite differing backend versions or threads")
    p.add_argument("--metrics", default="latency", help="metrics to gate: latency,throughput,memory "
                                                        "(default: latency)")
    for metric in ("latency", "throughput", "memory"):
        p.add_argument(f"--{metric}-threshold", type=float, metavar="FRACTION",
                       help=f"{metric} threshold, e.g. 0.05 for 5%% (default: calibrated for this device by "
                            "--calibrate, else per device type, docs/ci.md)")
    p.add_argument("--confidence", type=float, default=0.90, help="interval confidence (default 0.90)")
    p.add_argument("--remeasure", type=int, default=0, metavar="N",
                   help="measure regressed or suspect records N more times (interleaved, one process each) "
                        "and decide on all processes (default 0: off)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here (an existing file only with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing --junit file")
    p.add_argument("--seed", type=seed_arg, default=0, help="bootstrap seed, 0 to 2**32-1 (default 0)")
    add_run_args(p)
    p.add_argument("--out", help="(with run options) where to save the measured profile (default: under runs/)")
    add_format_args(p)
    p.set_defaults(handler=run)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")


def gate_options(args: argparse.Namespace) -> GateOptions:
    thresholds = {m: getattr(args, f"{m}_threshold") for m in ("latency", "throughput", "memory")
                  if getattr(args, f"{m}_threshold") is not None}
    return GateOptions(metrics=tuple(csv_list(args.metrics)), thresholds=thresholds, confidence=args.confidence,
                       seed=args.seed, remeasure=args.remeasure, allow_mismatch=args.allow_mismatch,
                       update_baseline=args.update_baseline, out=None if args.current else args.out, quiet=args.quiet)


def _current_and_run_options(args: argparse.Namespace) -> tuple[str | None, dict]:
    """CURRENT.json, or the sweep options to measure now with (as SweepConfig fields)."""
    if args.current:
        given = run_options_given(args) + (["--out"] if args.out else [])
        if given:
            raise ConfigError(f"give CURRENT.json or run options, not both (got {args.current} and "
                              f"{', '.join(given)})")
        return args.current, {}
    config = config_from_args(args)
    return None, {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def run(args: argparse.Namespace) -> int:
    options = gate_options(args)
    if args.junit and os.path.lexists(args.junit) and not args.force:
        raise ConfigError(f"--junit {args.junit!r} exists; pass --force to replace it")
    if args.calibrate and (args.update_baseline or args.remeasure or args.allow_mismatch):
        raise ConfigError("--calibrate measures the drift against an unchanged baseline of this device; it does "
                          "not combine with --update-baseline, --remeasure or --allow-mismatch")
    current, run_options = _current_and_run_options(args)
    if args.calibrate:
        cal = hwprofile.calibrate_gate(args.baseline, current, confidence=options.confidence, seed=options.seed,
                             out=options.out, quiet=options.quiet, on_message=_say, **run_options)
        emit([calibration_table(cal)], view_of(args), {"baseline": args.baseline, "device_id": cal.device_id,
                                                     "session": cal.session.to_dict(), "thresholds": cal.thresholds,
                                                     "sessions": cal.sessions})
        return 0
    result = hwprofile.check(args.baseline, current, gate=options, on_message=_say, **run_options)
    device = result.device_id
    if result.baseline_update == "created":
        row = {"outcome": "baseline created", "exit_code": 0, "baseline": args.baseline, "device_id": device,
               "records": result.baseline_records}
        emit([baseline_created_table(row)], view_of(args), row)
        return 0
    title = (f"hwprofile check: {result.outcome.upper()} ({device} against {args.baseline}"
             f"{'' if result.baseline_device == device else ' of ' + result.baseline_device})")
    for found in result.layer_changes:
        _say(f"regressed: {found['label']} b{found['batch']} {found['runner']}: layers that changed most: "
             f"{found['text']}")
    write_outputs(args, result, title, {"baseline": args.baseline, "device_id": device,
                                        "layer_changes": list(result.layer_changes),
                                        "threads_note": result.threads_note}, result.calibration_sessions,
                  (layer_changes_table(list(result.layer_changes)),) if result.layer_changes else (), result.notes)
    if result.exit_code == 3:
        failed = result.having("failed")
        _say(f"hwprofile: {len(failed)} current measurements failed ({failed[0].reason}); "
             "a measurement failure, not a regression (exit 3)")
    if result.baseline_update == "updated":
        _say(f"updated {args.baseline}: {result.baseline_records} records of {device}")
    elif result.baseline_update == "not updated":
        _say(f"baseline not updated: the gate did not pass ({result.outcome})")
    return result.exit_code


def write_outputs(args: argparse.Namespace, result: GateResult, title: str, extra: dict, sessions: int = 0,
                  more: tuple[Table, ...] = (), extra_notes: tuple[str, ...] = ()) -> None:
    """The verdict table (and ``more``) on stdout, in the GitHub step summary if there is one, and JUnit XML."""
    table = verdict_table(result, title, sessions, extra_notes)
    emit([table, *more], view_of(args), check_json(result, extra))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(render([table], "markdown", None).replace("### ", "## ", 1) + "\n\n")
    if args.junit:
        write_text(Path(args.junit), junit_xml(result), replace=args.force, what="JUnit file")
