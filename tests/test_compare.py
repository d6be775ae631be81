"""compare.py and merge.py: joins, seeded ratio intervals, the comparability guard, merging."""

import math
from pathlib import Path

import numpy as np
import pytest

from helpers import make_profiles
from hwprofile.analysis import (
    comparability,
    compare_sides,
    identity,
    join,
    latency_ratio,
    memory_ratios,
    sides,
    throughput_ratio,
)
from hwprofile.analysis._compare import cross_identity, process_medians_ms
from hwprofile.errors import ConfigError
from hwprofile.profile import Profile, Record
from hwprofile.report import merge

DATA = Path(__file__).parent / "data" / "profiles"


mp = make_profiles()


def profile(seed, **kw) -> Profile:
    return Profile.from_dict(mp.profile(seed, **kw))


def rec(seed=0, **kw) -> Record:
    rng = np.random.default_rng(seed)
    return Record.from_dict(mp.record(rng, "synthetic-cpu", "RegNetX-200MF", None, 1.0, 1, "ort:cpu", **kw))


def test_fixture_files_are_what_the_seeded_script_writes(tmp_path):
    mp.write(tmp_path)
    for name in ("cpu-a.json", "cpu-slow.json", "gpu.json", "corrupt.json", "schema-v3.json"):
        assert (tmp_path / name).read_text() == (DATA / name).read_text(), name
    assert all(d.startswith("synthetic-") for d in Profile.load(DATA / "cpu-a.json").devices)


def test_join_same_device_and_across_devices():
    a, b = profile(1), profile(2, models=mp.MODELS[:2])
    j = join(a.records, b.records)
    assert len(j.pairs) == 4 and len(j.only_base) == 4 and not j.only_current
    assert all(identity(x) == identity(y) for x, y in j.pairs)
    gpu = profile(3, device_id="synthetic-gpu", runners=("ort:cuda",))
    assert not join(a.records, gpu.records).pairs  # different runners never join on one device
    cross = join(a.records, gpu.records, cross_device=True)
    assert len(cross.pairs) == 8 and {(x.runner, y.runner) for x, y in cross.pairs} == {("ort:cpu", "ort:cuda")}
    assert cross_identity(a.records[0])[4] == "ort"


def test_process_medians_fall_back_to_stored_fields():
    r = rec(processes=3, samples=20)
    assert len(process_medians_ms(r)) == 3
    lat = {**r.latency.to_dict(), "samples_ms": [], "medians_ms": [1.0, 2.0]}
    assert process_medians_ms(r.replace(latency=lat)) == [1.0, 2.0]
    lat = {"median_ms": 4.0}
    assert process_medians_ms(r.replace(latency=lat)) == [4.0]


def test_latency_ratio_is_seeded_and_centred():
    a, b = rec(1), rec(2)
    r1, r2 = latency_ratio(a, b, seed=7), latency_ratio(a, b, seed=7)
    assert r1 == r2
    assert r1.ci_low < r1.ratio < r1.ci_high
    same = latency_ratio(a, a)
    assert same.ratio == pytest.approx(1.0) and same.ci_low < 1.0 < same.ci_high
    slow = latency_ratio(a, rec(3, slowdown=1.5))
    assert 1.35 < slow.ratio < 1.65 and slow.ci_low > 1.2


def test_interval_includes_drift_between_processes_not_only_samples():
    """Tight samples inside each process but 6% drift between processes: the interval must be wide."""
    tight = dict(noise=0.002, outliers=0.0, samples=200, processes=4)
    a, b = rec(11, drift=0.06, **tight), rec(12, drift=0.06, **tight)
    r = latency_ratio(a, b, confidence=0.95)
    within_only = 2 * 1.96 * 1.25 * 0.002 / math.sqrt(200) * math.sqrt(2)  # width from samples alone
    assert math.log(r.ci_high / r.ci_low) > 10 * within_only
    assert math.log(r.ci_high / r.ci_low) > 0.04


def test_single_process_uses_the_drift_floor():
    a, b = rec(21, processes=1), rec(22, processes=1)
    narrow = latency_ratio(a, b, drift_floor=0.0)
    wide = latency_ratio(a, b, drift_floor=0.03)
    assert math.log(wide.ci_high / wide.ci_low) > 2 * 1.96 * 0.03 * math.sqrt(2) * 0.9
    assert math.log(narrow.ci_high / narrow.ci_low) < math.log(wide.ci_high / wide.ci_low) / 3
    assert "assumed drift" in wide.method


def test_throughput_and_memory_directions():
    a, b = rec(31), rec(32, slowdown=1.25, memory_mb=30.0)
    t = throughput_ratio(a, b, drift_floor=0.02)
    assert t.higher_is_better and t.ratio < 0.9 and t.ci_low < t.ratio < t.ci_high
    (m,) = memory_ratios(a, b)
    assert m.metric == "memory:cpu_peak_rss_increase_mb" and m.current == 30.0 and m.ci_low is None


def test_failed_records_have_no_ratios():
    a = rec(41)
    bad = a.replace(status="crashed", latency=None)
    assert latency_ratio(a, bad) is None and throughput_ratio(a, bad) is None and memory_ratios(a, bad) == []


def _side(p: Profile, name="x"):
    return sides(p, name)[0]


def test_comparability_guard():
    a = _side(profile(1))
    assert [m for m in comparability(a, a, join(a.records, a.records).pairs) if m.severity == "refuse"] == []
    threads = _side(profile(2, threads=4))
    found = comparability(a, threads, join(a.records, threads.records).pairs)
    assert [(m.kind, m.records) for m in found] == [("thread setting", 8)]
    fp = {**mp.CPU_FP, "versions": {**mp.CPU_FP["versions"], "onnxruntime": "1.20.0"},
          "peaks": {"measured_utc": "2026-01-01T00:00:00+00:00"}}
    other = _side(profile(3, fingerprint=fp))
    found = comparability(a, other, join(a.records, other.records).pairs)
    assert [(m.kind, m.severity) for m in found] == [("backend version", "refuse")]
    fp = {**mp.CPU_FP, "versions": {**mp.CPU_FP["versions"], "torch": "2.13.0+cu130"}}
    local = _side(profile(4, fingerprint=fp))
    assert comparability(a, local, join(a.records, local.records).pairs) == []  # local build labels ignored


def test_cross_device_comparison_has_follows_tables_and_no_hardware_refusal():
    cpu = _side(profile(1), "cpu.json")
    gpu = _side(profile(8, device_id="synthetic-gpu", runners=("ort:cuda",), fingerprint=mp.GPU_FP,
                        ns_per_act=0.3), "gpu.json")
    c = compare_sides(cpu, gpu, drift_floor=0.01)
    assert c.cross_device and len(c.rows) == 8
    assert not [m for m in c.mismatches if m.severity == "refuse"]
    assert all(r.identity["runner"] == "ort:cpu>ort:cuda" for r in c.rows)
    assert 0.05 < c.summary[-1]["latency"]["ratio"] < 0.1
    assert set(c.follows) == {"cpu.json", "gpu.json"}
    rows = [row for rows in c.follows.values() for row in rows]  # 4 models per group: too few for a verdict
    assert rows and all(row["verdict"] == "not distinguishable" and "too few usable records" in row["basis"]
                        and row["note"] == "measure 1 more model" for row in rows)
    assert set(c.contrast) == {"cpu.json", "gpu.json"}


def test_geometric_mean_summary_interval():
    a, b = _side(profile(1)), _side(profile(3, slowdown=1.15))
    c = compare_sides(a, b)
    lat = c.summary[-1]["latency"]
    assert lat["ci_low"] < lat["ratio"] < lat["ci_high"] and 1.08 < lat["ratio"] < 1.22
    ratios = [r.latency.ratio for r in c.rows]
    assert lat["ratio"] == pytest.approx(math.exp(np.mean(np.log(ratios))))


# ------------------------------------------------------------------------------- merge

def test_merge_devices_and_identical_records():
    cpu, gpu = profile(1), profile(8, device_id="synthetic-gpu", runners=("ort:cuda",), fingerprint=mp.GPU_FP)
    m = merge([("cpu", cpu), ("gpu", gpu), ("cpu again", profile(1))])
    assert set(m.profile.devices) == {"synthetic-cpu", "synthetic-gpu"}
    assert len(m.profile.records) == 16 and m.sources["synthetic-cpu"] == ["cpu", "cpu again"]


def test_merge_conflicts_need_prefer_newer():
    old, new = profile(1, utc="2026-01-01T00:00:00+00:00"), profile(2, utc="2026-02-01T00:00:00+00:00")
    with pytest.raises(ConfigError, match="prefer newer"):
        merge([("old", old), ("new", new)])
    m = merge([("new", new), ("old", old)], prefer="newer")
    assert {r.measured_utc for r in m.profile.records} == {"2026-02-01T00:00:00+00:00"}
    assert any("newer" in n for n in m.notes)


def _peaks(copy_gb_per_s: float, utc: str) -> dict:
    return {"device": "cpu", "threads": 2, "copy": {"gb_per_s": copy_gb_per_s, "size_mb": 256, "repeats": 16},
            "matmul_fp32": {"flops_per_s": 2.1e11, "n": 2048, "repeats": 7}, "measured_utc": utc}


@pytest.mark.parametrize("newer_first", [False, True])
def test_merge_keeps_the_newer_peaks_of_one_machine_and_says_so(newer_first):
    """Measured peaks are readings, not identity: two profiles of one machine (the committed infer and train
    profiles measured 18.1 vs 16.7 GB/s) merge without --prefer; the newer reading is kept, whatever the order."""
    jan, feb = "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"
    old = profile(1, models=mp.MODELS[:1], utc=jan, fingerprint={**mp.CPU_FP, "peaks": _peaks(18.1, jan)})
    new = profile(2, models=mp.MODELS[1:2], utc=feb, fingerprint={**mp.CPU_FP, "peaks": _peaks(16.7, feb)})
    named = [("new", new), ("old", old)] if newer_first else [("old", old), ("new", new)]
    m = merge(named)
    assert m.profile.devices["synthetic-cpu"].fingerprint()["peaks"]["copy"]["gb_per_s"] == 16.7
    assert len(m.profile.records) == len(old.records) + len(new.records)
    assert m.notes == ("device synthetic-cpu: measured peaks differ between old and new: kept those of new (newer)",)
    assert not merge([("old", old), ("old again", old)]).notes  # equal readings: nothing to say


def test_merge_refuses_different_fingerprints_of_one_device():
    fp = {**mp.CPU_FP, "versions": {**mp.CPU_FP["versions"], "onnxruntime": "1.20.0"}}
    with pytest.raises(ConfigError, match="different fingerprints"):
        merge([("a", profile(1)), ("b", profile(1, fingerprint=fp, models=mp.MODELS[:1]))])
