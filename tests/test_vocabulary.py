"""Each enumeration has one source, hwprofile/vocabulary.py (issue 21): no other module spells one out again, and
the typed records, the sweep's configuration and argparse's choices use it."""

from __future__ import annotations

import ast
import dataclasses
import typing
from pathlib import Path

import pytest

from hwprofile import vocabulary
from hwprofile.profile import Record
from hwprofile.sweep import SweepConfig

ROOT = Path(__file__).resolve().parents[1]
ENUMS = {name: set(getattr(vocabulary, name)) for name in ("STATUSES", "MEASURED_STATUSES", "PRECISIONS", "MODES",
                                                            "QUALITIES")}


def _literal_sets(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield node.lineno, {e.value for e in node.elts}
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("Literal", "typing.Literal"):
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if len(elts) >= 2 and all(isinstance(e, ast.Constant) for e in elts):
                yield node.lineno, {e.value for e in elts}


def test_no_module_spells_an_enumeration_out_again():
    again = [f"{path.relative_to(ROOT)}:{line}: {sorted(values)} is vocabulary.{name}"
             for path in sorted((ROOT / "hwprofile").rglob("*.py")) if path.name != "vocabulary.py"
             for line, values in _literal_sets(ast.parse(path.read_text()))
             for name, enum in ENUMS.items() if values == enum]
    assert not again, again


def test_the_finder_finds_one():
    tree = ast.parse('x = ("fp32", "fp16")\ny: Literal["infer", "train"]')
    assert {frozenset(values) for _, values in _literal_sets(tree)} == {frozenset(ENUMS["PRECISIONS"]),
                                                                       frozenset(ENUMS["MODES"])}


@pytest.mark.parametrize("field,enum", [("precision", "PRECISIONS"), ("mode", "MODES"), ("status", "STATUSES"),
                                        ("quality", "QUALITIES")])
def test_the_record_types_its_fields_with_the_vocabulary(field, enum):
    assert _strings(Record.model_fields[field].annotation) == ENUMS[enum]


def _strings(hint) -> set[str]:
    """The strings of a Literal, through Optional and Annotated."""
    return {a for a in typing.get_args(hint) if isinstance(a, str)} | {
        s for a in typing.get_args(hint) if not isinstance(a, str) for s in _strings(a)}


def test_the_sweep_config_types_precision_and_mode():
    hints = typing.get_type_hints(SweepConfig)
    assert set(typing.get_args(hints["precision"])) == ENUMS["PRECISIONS"]
    assert set(typing.get_args(hints["mode"])) == ENUMS["MODES"]
    assert {f.name for f in dataclasses.fields(SweepConfig)} >= {"precision", "mode"}


@pytest.mark.parametrize("command,flag,enum", [("run", "--precision", "PRECISIONS"), ("run", "--mode", "MODES"),
                                               ("layers", "--precision", "PRECISIONS")])
def test_argparse_offers_the_vocabulary(command, flag, enum):
    from hwprofile.cli import build_parser

    parser = build_parser(command)
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices[command]
    action = next(a for a in sub._actions if flag in a.option_strings)
    assert set(action.choices) == ENUMS[enum]
