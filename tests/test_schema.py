"""profiles/schema.json: generated from the typed models, current, and a standard validator accepts every
committed profile and refuses a damaged one."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from hwprofile.profile import Profile
from hwprofile.profile._schema import SCHEMA_PATH, render

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted(p for p in [*(ROOT / "profiles").glob("*.json"), *(ROOT / "tests/data/profiles").glob("*.json")]
                   if p.name not in ("schema.json", "corrupt.json", "schema-v3.json"))


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_file_is_current():
    assert SCHEMA_PATH.read_text() == render(), "profiles/schema.json is stale: run python -m hwprofile.profile._schema"


def test_there_are_committed_v1_profiles_to_check():
    assert len(COMMITTED) >= 10
    assert any(json.loads(p.read_text())["schema_version"] == 1 for p in COMMITTED)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_every_committed_profile_validates_and_loads(validator, path):
    data = json.loads(path.read_text())
    errors = [e.message for e in validator.iter_errors(data)]
    assert not errors, errors[:3]
    profile = Profile.load(path)  # through the v1 -> v2 migration
    assert profile.schema_version == 2 and len(profile.records) == len(data["records"])
    migrated = profile.to_dict()
    assert migrated["schema_version"] == 2 and not list(validator.iter_errors(migrated))


@pytest.mark.parametrize("field,value", [("median_ms", "8.6"), ("median_ms", -1.0), ("median_ms", 0)])
def test_schema_rejects_a_bad_median(validator, field, value):
    data = json.loads(COMMITTED[0].read_text())
    bad = copy.deepcopy(data)
    next(r for r in bad["records"] if r["latency"])["latency"][field] = value
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("path,value", [("batch", 0), ("batch", "eight"), ("scale", "four"), ("status", "fine"),
                                        ("flops", 10**400), ("strategy", ["dWr"]), ("settings", None)])
def test_schema_rejects_bad_record_fields(validator, path, value):
    data = json.loads(COMMITTED[0].read_text())
    data["records"][0][path] = value
    assert list(validator.iter_errors(data))


def test_schema_rejects_a_future_version(validator):
    data = json.loads((ROOT / "tests/data/profiles/schema-v3.json").read_text())
    assert list(validator.iter_errors(data))
