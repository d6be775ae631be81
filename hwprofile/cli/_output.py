"""Rendering of results: table, markdown, csv or json, chosen with ``--format``/``--json``.

Terminal tables fit the width: ``$COLUMNS``, else the terminal's, else :data:`DEFAULT_WIDTH`. Columns are
kept by priority (:attr:`Column.priority`, lower first; unset: left to right), the rest are named in a
note; ``--wide`` shows every column, ``--columns`` picks them, ``--table`` picks one table. Titles and notes
wrap to the width. Numbers are written for people: a fixed number of significant digits, never
e-notation (:func:`sig`). Markdown and CSV hold every column unless ``--columns`` picks them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tabulate as _tabulate
from tabulate import tabulate

from hwprofile.errors import ConfigError

FORMATS = ("table", "json", "markdown", "csv")
#: the width of terminal tables when neither $COLUMNS nor a terminal says
DEFAULT_WIDTH = 100
#: the narrowest width a table is fitted to (a smaller $COLUMNS counts as this)
MIN_WIDTH = 40
#: priority of a column shown whatever the width (e.g. the model name)
ALWAYS = 0
#: priority of a column with none given (columns of equal priority are kept left to right)
DEFAULT_PRIORITY = 2


@dataclass(frozen=True)
class Column:
    """One column: the row key, its header, how to show a value in a table, and how much it matters.

    ``priority``: lower numbers are kept first when a table must fit the terminal; :data:`ALWAYS` (0) is
    never left out; None means :data:`DEFAULT_PRIORITY`, so tables without priorities lose columns from
    the right. ``wrap``: a text column wrapped to at most this many characters when the table is fitted
    (its full text with ``--wide``).
    """

    key: str
    header: str
    fmt: Callable[[Any], str] | None = None
    priority: int | None = None
    wrap: int | None = None

    @property
    def rank(self) -> int:
        return DEFAULT_PRIORITY if self.priority is None else self.priority


@dataclass(frozen=True)
class Table:
    """A titled table; ``name`` is what ``--table`` picks it by (default: from the title)."""

    title: str
    columns: Sequence[Column]
    rows: Sequence[dict]
    notes: Sequence[str] = field(default=())
    name: str | None = None

    @property
    def key(self) -> str:
        if self.name:
            return self.name
        words = re.findall(r"[a-z0-9]+", self.title.lower())[:3]
        return "-".join(words) or "table"


@dataclass(frozen=True)
class View:
    """How to render: the format, the width terminal tables fit (None: any), the columns and table picked."""

    format: str = "table"
    width: int | None = DEFAULT_WIDTH
    columns: tuple[str, ...] = ()
    table: str | None = None


def add_format_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("output")
    g.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    g.add_argument("--json", dest="format", action="store_const", const="json", help="shorthand for --format json")
    g.add_argument("--wide", action="store_true",
                   help="every column, however wide (default: tables fit $COLUMNS, else the terminal, else "
                        f"{DEFAULT_WIDTH} characters)")
    g.add_argument("--columns", metavar="A,B,...",
                   help="only these columns, in this order (keys as in --format csv, or headers)")
    g.add_argument("--table", metavar="NAME", help="only this table (its name or number; one plain CSV table "
                                                   "with --format csv)")


def terminal_width(environ: dict | None = None) -> int:
    """$COLUMNS if set to a number, else the terminal's width when stdout is one, else :data:`DEFAULT_WIDTH`."""
    env = os.environ if environ is None else environ
    text = str(env.get("COLUMNS", "")).strip()
    if text.isdigit() and int(text) > 0:
        return max(MIN_WIDTH, int(text))
    try:
        if sys.stdout.isatty():
            return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    except (AttributeError, ValueError, OSError):
        pass
    return DEFAULT_WIDTH


def view_of(args: argparse.Namespace) -> View:
    """The :class:`View` the output options of ``args`` ask for."""
    picked = tuple(c.strip() for c in (getattr(args, "columns", None) or "").split(",") if c.strip())
    if getattr(args, "columns", None) is not None and not picked:
        raise ConfigError("--columns: expected comma-separated column names, e.g. model,median_ms")
    return View(format=getattr(args, "format", "table") or "table",
                width=None if getattr(args, "wide", False) else terminal_width(),
                columns=picked, table=getattr(args, "table", None))


# ------------------------------------------------------------------------------------- numbers

def sig(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and no e-notation: 1740.3 -> ``1740``, 11.0 -> ``11.0``,
    0.01234 -> ``0.0123``; integers as they are; None -> ``-``. Numbers of more digits are rounded to whole
    numbers."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return f"{0:.{max(digits - 1, 0)}f}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:.{decimals}f}"
    if decimals and math.floor(math.log10(abs(float(text)))) > magnitude:
        text = f"{value:.{decimals - 1}f}"  # 9.996 -> 10.0, not 10.00
    return text


_UNITS = (("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12))


def si(value: float | None, digits: int = 3) -> str:
    """``385825092`` -> ``386M``, ``6748036`` -> ``6.75M``, ``999999`` -> ``1.00M``; None -> ``-``; never
    e-notation."""
    if value is None:
        return "-"
    if abs(value) < 1000:
        return sig(value, digits) if isinstance(value, float) and value != int(value) else f"{value:.0f}"
    for i, (unit, size) in enumerate(_UNITS[1:], 1):
        text = sig(float(value) / size, digits)
        if abs(float(text)) < 1000 or i == len(_UNITS) - 1:
            return text + unit
    return sig(float(value), digits)


def factor(value: float | None) -> str:
    """A scale factor as written on the command line: 4, 1.5, 16."""
    return "-" if value is None else f"{value:g}" if abs(value) < 1e6 else sig(float(value))


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{sig(value, 3)}x"


def num(value: float | None, digits: int = 3) -> str:
    return sig(value, digits)


def ms(value: float | None) -> str:
    """A time in milliseconds (the header says ms): ``1740``, ``31.4``, ``0.412``."""
    return sig(value, 3)


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage: 0.0798 -> ``8.0%``."""
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def interval(values: Sequence[float] | None, digits: int = 2) -> str:
    """``[0.07, 0.49]``; an empty or missing interval -> ``-``."""
    if not values:
        return "-"
    return f"[{values[0]:.{digits}f}, {values[1]:.{digits}f}]"


def _plain(value: Any) -> Any:
    """A cell without a formatter: floats for people, lists joined."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return sig(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_plain(v)) for v in value)
    return value


def _cell(col: Column, row: dict, raw: bool) -> Any:
    value = row.get(col.key)
    if raw:
        return value
    return _plain(value) if col.fmt is None else col.fmt(value)


# ------------------------------------------------------------------------------------- choosing

def _norm(name: str) -> str:
    return re.sub(r"[\s\-/]+", "_", name.strip().lower())


def _matches(col: Column, name: str) -> bool:
    return _norm(name) in (_norm(col.key), _norm(col.header))


def pick_tables(tables: Sequence[Table], name: str | None) -> list[Table]:
    """``--table NAME``: the table of that name (or 1-based number); every table when ``name`` is None."""
    if name is None:
        return list(tables)
    if name.isdigit() and 1 <= int(name) <= len(tables):
        return [tables[int(name) - 1]]
    found = [t for t in tables if _norm(t.key) == _norm(name)]
    if not found:
        names = ", ".join(f"{i} {t.key}" for i, t in enumerate(tables, 1)) or "none"
        raise ConfigError(f"--table {name!r}: this output has no such table (its tables: {names})")
    return found[:1]


def pick_columns(tables: Sequence[Table], names: Sequence[str]) -> list[Table]:
    """``--columns``: each table with the named columns in the given order; tables holding none of them are
    left out; a name no table has is an error naming what there is."""
    if not names:
        return list(tables)
    unknown = [n for n in names if not any(_matches(c, n) for t in tables for c in t.columns)]
    if unknown:
        have = "; ".join(f"{t.key}: " + ", ".join(c.key for c in t.columns) for t in tables)
        raise ConfigError(f"--columns: no column named {', '.join(map(repr, unknown))} (columns: {have})")
    out = []
    for t in tables:
        cols = [next(c for c in t.columns if _matches(c, n)) for n in names if any(_matches(c, n) for c in t.columns)]
        if cols:
            out.append(Table(t.title, tuple(dict.fromkeys(cols)), t.rows, t.notes, t.name))
    return out


def _body(columns: Sequence[Column], rows: Sequence[dict], style: str, maxwidths: list | None = None) -> str:
    cells = [[_cell(c, r, False) for c in columns] for r in rows]
    padding = _tabulate.MIN_PADDING
    _tabulate.MIN_PADDING = 0  # columns as wide as their widest cell or header, no more (tabulate adds 2)
    try:
        return tabulate(cells, headers=[c.header for c in columns], tablefmt=style, disable_numparse=True,
                        maxcolwidths=maxwidths if maxwidths and any(maxwidths) else None)
    finally:
        _tabulate.MIN_PADDING = padding


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def fit_columns(table: Table, width: int | None, style: str = "simple") -> tuple[list[Column], list[Column], list]:
    """(columns shown, columns left out, per-column wrap widths) so the table's lines fit ``width``.

    Columns are taken in priority order and kept when the table still fits; :data:`ALWAYS` columns are
    always kept, and if those alone are too wide their longest cells are wrapped.
    """
    cols = list(table.columns)
    if width is None or not cols:
        return cols, [], []
    order = sorted(range(len(cols)), key=lambda i: (cols[i].rank, i))
    chosen = {order[0]} | {i for i in order if cols[i].rank <= ALWAYS}
    for i in order:
        if i in chosen:
            continue
        trial = [cols[j] for j in sorted(chosen | {i})]
        if _width(_body(trial, table.rows, style, [c.wrap for c in trial])) <= width:
            chosen.add(i)
    shown = [cols[i] for i in sorted(chosen)]
    hidden = [cols[i] for i in range(len(cols)) if i not in chosen]
    return shown, hidden, _wraps(shown, table.rows, style, width)


def _wraps(shown: list[Column], rows: Sequence[dict], style: str, width: int) -> list:
    """Wrap widths: each column's own ``wrap``, then the widest columns brought down until the table fits."""
    maxw: list = [c.wrap for c in shown]
    for _ in range(4 * len(shown)):
        text = _body(shown, rows, style, maxw)
        excess = _width(text) - width
        if excess <= 0:
            return maxw
        widths = [max([len(c.header)] + [len(str(_cell(c, r, False))) for r in rows]) for c in shown]
        widths = [w if m is None else min(w, m) for w, m in zip(widths, maxw)]
        i = max(range(len(shown)), key=lambda j: widths[j])
        if widths[i] <= 8:
            break
        maxw[i] = max(8, widths[i] - excess)
    return maxw


def _wrap(text: str, width: int | None) -> str:
    if width is None:
        return text
    def fill(line: str) -> str:  # continuation lines hang two spaces under the line's own indent
        hang = " " * (len(line) - len(line.lstrip()) + 2)
        return textwrap.fill(line, width, subsequent_indent=hang, break_long_words=True,
                             break_on_hyphens=False) or line
    return "\n".join(fill(line) for line in text.splitlines())


# ------------------------------------------------------------------------------------- rendering

def render(tables: Sequence[Table], fmt: str | View, payload: Any, preface: Sequence[str] = ()) -> str:
    """The text for a format (or a :class:`View`): json renders ``payload``; the others render ``tables``.

    ``preface``: lines printed before the tables (the answer first): wrapped to the width in a terminal, a
    fenced block in markdown; left out of CSV and when ``--table`` or ``--columns`` picks what to show.
    """
    view = fmt if isinstance(fmt, View) else View(format=fmt)
    if view.format == "json":
        return json.dumps(payload, indent=2, default=str)
    picked = view.table is not None or bool(view.columns)
    tables = pick_columns(pick_tables(tables, view.table), view.columns)
    if view.format == "csv":
        return "\n".join(_csv(t, many=len(tables) > 1) for t in tables)
    markdown = view.format == "markdown"
    style = "github" if markdown else "simple"
    wrap = None if markdown else view.width
    fit = None if view.columns else wrap  # picked columns are shown however wide
    parts = []
    if preface and not picked:
        lines = "\n".join(preface) if markdown else "\n".join(_wrap(line, wrap) for line in preface)
        parts.append(f"```text\n{lines}\n```" if markdown else lines)
    for t in tables:
        shown, hidden, maxw = fit_columns(t, fit, style)
        body = _body(shown, t.rows, style, maxw)
        title = f"### {t.title}" if markdown else _wrap(t.title, wrap)
        notes = list(t.notes)
        if hidden:
            notes.append(f"{len(hidden)} more column{'s' * (len(hidden) > 1)} (--wide shows every column, "
                         "--columns picks): " + ", ".join(c.key for c in hidden))
        text = "\n".join(_wrap(n, wrap) for n in notes)
        parts.append("\n".join(x for x in (title, "", body, ("\n" + text) if text else None) if x is not None))
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


def emit(tables: Sequence[Table], fmt: str | View, payload: Any, preface: Sequence[str] = ()) -> None:
    print(render(tables, fmt, payload, preface))
