"""``show --json`` and ``check --json``: typed, free of Python reprs, and valid against the published schemas
(docs/schemas/, generated from hwprofile.report._outputs)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from hwprofile.cli import main
from hwprofile.profile import Profile
from hwprofile.report._outputs import SCHEMA_DIR, SCHEMAS, render

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "profiles"
COMMITTED = sorted(ROOT.glob("profiles/*.json"))
COMMITTED = [p for p in COMMITTED if p.name != "schema.json"]
READABLE = COMMITTED + sorted(p for p in FIXTURES.glob("*.json") if p.name not in ("corrupt.json", "schema-v3.json"))
#: what str() of a pydantic model or dataclass looks like: ``name='x'``, ``peaks={...}``, ``n=3``
REPR = re.compile(r"\b\w+=(['\"{\[(]|\d)")


def _json(*argv: str, cwd: Path = ROOT) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, json.loads(out.getvalue())


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_published_schemas_are_current(name):
    assert (SCHEMA_DIR / name).read_text() == render(name), \
        f"docs/schemas/{name} is stale: run python -m hwprofile.report._outputs"


def test_there_are_committed_profiles():
    assert len(COMMITTED) >= 3


@pytest.mark.parametrize("path", READABLE, ids=lambda p: p.name)
def test_show_json_validates_and_holds_no_repr(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, data = _json("show", str(path), "--json")
    assert code == 0
    errors = [e.message for e in _validator("show.schema.json").iter_errors(data)]
    assert not errors, errors[:3]
    reprs = [s for s in _strings(data) if REPR.search(s)]
    assert not reprs, reprs[:3]
    profile = Profile.load(path)
    assert set(data["devices"]) == set(profile.devices)
    assert all(isinstance(fp, dict) for fp in data["devices"].values())
    assert [(r["model"], r["strategy"], r["scale"], r["batch"], r["runner"]) for r in data["records"]] == \
        [(r.model, r.strategy, r.scale, r.batch, r.runner) for r in profile.records]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_no_value_of_a_committed_profile_contains_an_equals_sign(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    _, data = _json("show", str(path), "--json")
    assert not [s for s in _strings(data) if "=" in s]


def test_show_json_lists_the_percentiles():
    _, data = _json("show", str(COMMITTED[0]), "--json")
    row = next(r for r in data["records"] if r["status"] == "ok")
    assert row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["mean_ms"] > 0


def test_the_show_schema_refuses_a_device_written_as_a_repr_and_a_row_without_scale():
    _, data = _json("show", str(COMMITTED[0]), "--json")
    validator = _validator("show.schema.json")
    bad = json.loads(json.dumps(data))
    device = next(iter(bad["devices"]))
    bad["devices"][device] = "id='cpu' device='cpu' peaks={...}"
    assert list(validator.iter_errors(bad))
    bad = json.loads(json.dumps(data))
    del bad["records"][0]["scale"]
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("argv", [
    ["--baseline", str(FIXTURES / "cpu-a.json"), str(FIXTURES / "cpu-slow.json")],
    ["--baseline", str(COMMITTED[0]), str(COMMITTED[0]), "--metrics", "latency,throughput,memory"],
    ["--baseline", str(FIXTURES / "cpu-a.json"), str(FIXTURES / "cpu-failed.json")],
], ids=["regression", "self", "failed"])
def test_check_json_validates(argv):
    code, data = _json("check", *argv, "--json")
    assert code == data["exit_code"]
    errors = [e.message for e in _validator("check.schema.json").iter_errors(data)]
    assert not errors, errors[:3]


def test_check_json_of_a_first_baseline_and_a_calibration_validate(tmp_path):
    validator = _validator("check.schema.json")
    base = tmp_path / "base.json"
    code, data = _json("check", "--baseline", str(base), str(FIXTURES / "cpu-a.json"), "--update-baseline", "--json")
    assert code == 0 and data["outcome"] == "baseline created" and not list(validator.iter_errors(data))
    copy = tmp_path / "copy.json"
    shutil.copy(FIXTURES / "cpu-a.json", copy)
    code, data = _json("check", "--baseline", str(copy), str(FIXTURES / "cpu-a2.json"), "--calibrate", "--json")
    assert code == 0 and data["sessions"] == 1 and not list(validator.iter_errors(data))
    assert list(validator.iter_errors({**data, "sessions": "one"}))
