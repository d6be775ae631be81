"""Rendering of the caveats ``predict`` and ``select`` say beside a predicted number (analysis' Caveat):
a short mark in a table cell, each full text once as a warning under the table (on stderr with --format csv,
which has no room for notes; in each row's ``caveats`` with --json)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hwprofile.analysis import LOO_LIMIT_PCT
from hwprofile.cli._output import View

CAVEAT_KINDS = ("range", "family", "loo")


def caveats_cell(value: str | None) -> str:
    """A row's ``caveat`` (``flops 4.70x out, other family``), ``-`` when the number has none."""
    return value or "-"


def _row(row: dict) -> str:
    return f"{row['runner']} b{row['batch']}"


def caveat_notes(rows: Sequence[dict]) -> list[str]:
    """Each caveat's full text once (``warning: ...``), naming the rows it applies to unless it applies to all."""
    where: dict[str, list[str]] = {}
    for row in rows:
        for c in row.get("caveats") or ():
            where.setdefault(c["text"], []).append(_row(row))
    out = []
    for text, labels in where.items():
        labels = list(dict.fromkeys(labels))
        every = len(labels) == len({_row(r) for r in rows})
        out.append(f"warning{'' if every else ' (' + ', '.join(labels) + ')'}: {text}")
    return out


def select_notes(rows: Sequence[dict]) -> list[str]:
    """``select``'s caveats, counted per kind (the ranges differ per candidate, so each is not repeated): how
    many candidates lie outside the measured range, are of another family, or come from an unreliable fit."""
    out: list[str] = []
    flagged = [r for r in rows if r.get("caveats")]
    if not flagged:
        return out
    out.append(f"warning: {len(flagged)} of {len(rows)} candidates have caveats (the caveats column): per runner and "
               "batch they come after those without")
    for kind in CAVEAT_KINDS:
        texts = [c["text"] for r in rows for c in r.get("caveats") or () if c["kind"] == kind]
        n = sum(1 for r in rows if any(c["kind"] == kind for c in r.get("caveats") or ()))
        if not n:
            continue
        if kind == "range":
            ranges = sorted({t.split("(", 1)[1].split(")", 1)[0] for t in texts if "(" in t})
            out.append(f"  out: {n} outside the measured range ({'; '.join(ranges)}), by the factor shown: an "
                       "extrapolation")
        elif kind == "family":
            out.append(f"  other family: {n}: {texts[0].split(': ', 1)[-1]}")
        else:
            out.append(f"  LOO: {n} predicted by a fit whose median leave-one-out error is above the "
                       f"{LOO_LIMIT_PCT:g}% limit (or unknown): not reliable")
    return out


def warn_on_stderr(lines: Sequence[str], view: View) -> None:
    """With --format csv the warnings go to stderr (CSV has no notes); otherwise they are notes of the table."""
    if view.format == "csv":
        for line in lines:
            sys.stderr.write(line.strip() + "\n")
