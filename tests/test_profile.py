import json
from pathlib import Path

import pytest

from hwprofile.profile import Profile, Record
from synthetic import synthetic_profile

PROFILES = sorted(p for p in (Path(__file__).parent.parent / "profiles").glob("*.json")
                  if p.name != "schema.json")  # the JSON Schema, not a profile


def test_to_pandas_has_one_row_per_record():
    pytest.importorskip("pandas")
    prof = synthetic_profile()
    df = prof.to_pandas()
    assert len(df) == len(prof.records)
    assert {"model", "strategy", "runner", "median_ms", "flops", "acts", "samples_per_s"} <= set(df.columns)


def test_upsert_replaces_same_identity():
    prof = synthetic_profile(batches=(1,))
    n = len(prof.records)
    first = prof.records[0]
    prof.upsert(Record(**{**first.to_dict(), "status": "failed", "reason": "x"}))
    assert len(prof.records) == n and prof.by_key()[first.key()].status == "failed"


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "p.json"
    synthetic_profile().save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]
    assert json.loads(path.read_text())["schema_version"] == 2  # saves write version 2


@pytest.mark.parametrize("path", PROFILES, ids=[p.name for p in PROFILES])
def test_committed_profiles_load_through_the_schema(path):
    prof = Profile.load(path)
    assert prof.devices and prof.records
    assert all(r.device_id in prof.devices for r in prof.records)
    assert any(r.ok for r in prof.records)



def test_profiles_folder_is_not_empty():
    assert PROFILES, "profiles/ should hold at least one real device profile"


def test_v1_migration_fills_and_recomputes(tmp_path):
    """Version 1 -> 2: device ids, max_ms/repeat_spread from the samples, pooled records' statistics
    recomputed as the median of per-process medians (version 1 stored the pooled median)."""
    data = json.loads((Path(__file__).parent / "data" / "profiles" / "cpu-a.json").read_text())
    assert data["schema_version"] == 1
    lat = data["records"][0]["latency"]
    assert "max_ms" not in lat and "repeat_spread" not in lat
    pooled = data["records"][1]["latency"]
    pooled["pooled_processes"] = len(pooled["samples_ms"])
    pooled["median_ms"] = 1.0  # a stale/pooled value the migration must not keep
    (tmp_path / "v1.json").write_text(json.dumps(data))
    prof = Profile.load(tmp_path / "v1.json")
    r0, r1 = prof.records[0].latency, prof.records[1].latency
    assert r0.max_ms == max(max(s) for s in lat["samples_ms"])
    meds = lat["medians_ms"]
    assert r0.repeat_spread == pytest.approx(max(meds) / min(meds) - 1)
    assert r0.median_ms == lat["median_ms"]  # not recomputed: only filled
    import statistics

    assert r1.median_ms == pytest.approx(statistics.median(statistics.median(s) for s in pooled["samples_ms"]))
    assert all(d.id == k for k, d in prof.devices.items())
    out = prof.save(tmp_path / "v2.json", replace=False)
    assert json.loads(out.read_text())["schema_version"] == 2
