"""The rendering layer (hwprofile/cli/_output.py): tables fit the width by column priority, --wide / --columns /
--table, wrapped titles and notes, numbers for people (never e-notation)."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwprofile.cli._output import ALWAYS, Column, Table, View, fit_columns, render, si, sig, terminal_width
from hwprofile.errors import ConfigError

ROWS = [{"name": f"model-{i}", "a": 1.5 * i, "b": "x" * 20, "c": 10 ** i, "d": "low priority"} for i in range(4)]


def _table(**kw) -> Table:
    cols = (Column("name", "name", priority=ALWAYS), Column("a", "a value", sig, priority=1),
            Column("b", "b text", priority=3), Column("c", "c count", si, priority=2),
            Column("d", "d last", priority=4))
    return Table("A table whose title is long enough to need wrapping at a narrow width, as titles can be",
                 cols, ROWS, notes=("a note " * 30,), **kw)


def _lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize("width", [40, 50, 60, 80, 100])
def test_every_line_fits_the_width_and_the_hidden_columns_are_named(width):
    text = render([_table()], View(width=width), None)
    assert max(map(len, _lines(text))) <= width
    shown, hidden, _ = fit_columns(_table(), width)
    assert shown[0].key == "name" and {c.key for c in shown} | {c.key for c in hidden} == set("nabcd") - {"n"} | {
        "name"}
    if hidden:
        note = " ".join(_lines(text)[-3:])
        assert "--wide" in text and all(c.key in note for c in hidden)


def test_columns_go_by_priority_not_position():
    shown, hidden, _ = fit_columns(_table(), 36)
    assert [c.key for c in shown] == ["name", "a", "c"] and [c.key for c in hidden] == ["b", "d"]


def test_a_table_without_priorities_loses_columns_from_the_right():
    cols = tuple(Column(k, k * 6) for k in "pqrst")
    shown, hidden, _ = fit_columns(Table("t", cols, [dict.fromkeys("pqrst", "v")]), 30)
    assert [c.key for c in shown] == ["p", "q", "r", "s"][:len(shown)] and hidden[-1].key == "t"


def test_wide_keeps_every_column_and_the_long_lines():
    text = render([_table()], View(width=None), None)
    assert all(h in _lines(text)[2] for h in ("a value", "b text", "c count", "d last"))
    assert "--wide" not in text


def test_always_columns_too_wide_for_the_width_are_wrapped():
    t = Table("t", (Column("k", "key", priority=ALWAYS), Column("why", "why", priority=ALWAYS)),
                   [{"k": "a", "why": "a long reason " * 8}])
    text = render([t], View(width=40), None)
    assert max(map(len, _lines(text))) <= 40 and "reason" in text


def test_a_wrap_column_is_wrapped_to_let_others_in_but_whole_with_wide():
    t = Table("t", (Column("k", "key", priority=ALWAYS), Column("why", "why", priority=1, wrap=12),
                    Column("n", "n", priority=2)), [{"k": "a", "why": "one two three four five six", "n": 1}])
    narrow = render([t], View(width=30), None)
    assert "one two" in narrow and max(map(len, _lines(narrow))) <= 30 and _lines(narrow)[2].split()[-1] == "n"
    assert "one two three four five six" in render([t], View(width=None), None)


def test_columns_picks_by_key_or_header_in_the_given_order_and_leaves_out_tables_without_them():
    other = Table("other", (Column("z", "zed"),), [{"z": 1}], name="other")
    text = render([_table(name="main"), other], View(width=60, columns=("C count", "name")), None)
    header = next(line for line in _lines(text) if line.startswith("c count"))
    assert header.split() == ["c", "count", "name"] and "zed" not in text and "--wide" not in text
    with pytest.raises(ConfigError, match="no column named 'nope'.*main: name, a, b, c, d"):
        render([_table(name="main")], View(columns=("nope",)), None)


def test_table_picks_one_table_by_name_or_number():
    tables = [_table(name="first"), Table("Second table", (Column("z", "zed"),), [{"z": 1}])]
    assert render(tables, View(table="second-table"), None).startswith("Second table")
    assert render(tables, View(table="2"), None).startswith("Second table")
    with pytest.raises(ConfigError, match="1 first, 2 second-table"):
        render(tables, View(table="third"), None)


def test_csv_with_table_is_one_plain_table_and_holds_every_column():
    tables = [_table(name="first"), Table("Second", (Column("z", "zed"),), [{"z": 1}], name="second")]
    text = render(tables, View(format="csv", table="first", width=20), None)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert not text.startswith("#") and len(rows) == 4 and set(rows[0]) == {"name", "a", "b", "c", "d"}
    assert rows[3]["c"] == "1000"  # raw values: what a program reads


def test_markdown_is_not_cut_to_the_terminal():
    text = render([_table()], View(format="markdown", width=40), None)
    assert "d last" in text and "--wide" not in text


def test_json_is_the_payload():
    assert json.loads(render([_table()], View(format="json"), {"x": 1})) == {"x": 1}


def test_terminal_width_reads_columns():
    assert terminal_width({"COLUMNS": "120"}) == 120
    assert terminal_width({"COLUMNS": "10"}) == 40  # too narrow for any table: the least it fits
    assert terminal_width({"COLUMNS": "wide"}) == 100  # not a number; tests run without a terminal


def test_numbers_for_people():
    assert [sig(v) for v in (1740.3, 11.0, 0.01234, 9.996, 31.37, 0.0, None, 12)] == [
        "1740", "11.0", "0.0123", "10.0", "31.4", "0.00", "-", "12"]
    assert [si(v) for v in (385825092, 6748036, 999999, 512, 2.5e15)] == ["386M", "6.75M", "1.00M", "512", "2500T"]


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18))
def test_no_number_is_written_in_e_notation(value):
    for text in (sig(value), sig(value, 4), si(value)):
        assert "e" not in text.lower() or not any(ch.isdigit() for ch in text.split("e")[-1]), text
    if value != 0 and 1e-6 <= abs(value) < 1e15:
        assert math.isclose(float(sig(value, 3)), value, rel_tol=0.01, abs_tol=1e-9)


def test_a_float_cell_without_a_formatter_is_not_e_notation():
    t = Table("t", (Column("v", "v"),), [{"v": 123456789.0}, {"v": 0.0000123}])
    assert "e+" not in render([t], View(), None) and "e-" not in render([t], View(), None)


def test_a_preface_comes_first_fits_the_width_and_is_left_out_when_a_table_is_picked():
    """The answer first (show, run): lines before the tables, wrapped to the width; not in CSV, nor when --table or
    --columns picks what to show; a text block in markdown."""
    preface = ["A title line", "  a row " + "word " * 30]
    text = render([_table(name="main")], View(width=60), None, preface)
    lines = _lines(text)
    assert lines[0] == "A title line" and max(map(len, lines)) <= 60
    assert lines[1].startswith("  a row") and lines[2].startswith("    word")  # hangs under its own line
    assert text.index("A table whose title") > text.index("word")
    assert "A title line" not in render([_table(name="main")], View(width=60, table="main"), None, preface)
    assert "A title line" not in render([_table(name="main")], View(width=60, columns=("name",)), None, preface)
    assert "A title line" not in render([_table(name="main")], View(format="csv"), None, preface)
    assert render([_table(name="main")], View(format="markdown"), None, preface).startswith(
        "```text\nA title line\n  a row word")
