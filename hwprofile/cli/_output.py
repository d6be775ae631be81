"""Rendering of results: table, markdown, csv or json, chosen with ``--format``/``--json``."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

FORMATS = ("table", "json", "markdown", "csv")


@dataclass(frozen=True)
class Column:
    """One column: the row key, its header, and how to show a value in a table."""

    key: str
    header: str
    fmt: Callable[[Any], str] | None = None


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[Column]
    rows: Sequence[dict]
    notes: Sequence[str] = field(default=())


def add_format_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--json", dest="format", action="store_const", const="json",
                        help="shorthand for --format json")


def si(value: float | None, digits: int = 3) -> str:
    """``385825092`` -> ``385.8M``; None -> ``-``."""
    if value is None:
        return "-"
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.{digits}g}{unit}" if value / size < 100 else f"{value / size:.1f}{unit}"
    return f"{value:g}"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _cell(col: Column, row: dict, raw: bool) -> Any:
    value = row.get(col.key)
    if raw or col.fmt is None:
        return "-" if value is None and not raw else value
    return col.fmt(value)


def render(tables: Sequence[Table], fmt: str, payload: Any) -> str:
    """The text for ``fmt``: json renders ``payload``; the others render ``tables``."""
    if fmt == "json":
        return json.dumps(payload, indent=2, default=str)
    if fmt == "csv":
        return "\n".join(_csv(t, many=len(tables) > 1) for t in tables)
    style = "github" if fmt == "markdown" else "simple"
    parts = []
    for t in tables:
        body = tabulate([[_cell(c, r, False) for c in t.columns] for r in t.rows],
                        headers=[c.header for c in t.columns], tablefmt=style, disable_numparse=True)
        title = f"### {t.title}" if fmt == "markdown" else t.title
        notes = "\n".join(t.notes)
        parts.append("\n".join(x for x in (title, "", body, notes and "\n" + notes) if x is not None))
    return "\n\n".join(parts)


def _csv(table: Table, many: bool) -> str:
    buf = io.StringIO()
    if many:
        buf.write(f"# {table.title}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(row.get(c.key)) for c in table.columns])
    return buf.getvalue().rstrip("\n")


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return "" if value is None else value


def emit(tables: Sequence[Table], fmt: str, payload: Any) -> None:
    print(render(tables, fmt, payload))
