"""A/A calibration of the gate's thresholds (hwprofile.gate._calibration), on seeded synthetic sessions.

A session is a profile from tests/data/profiles/make_profiles.py whose every record is slowed by one
common factor drawn per session (``slowdown``): the drift *between sessions* that a stored baseline
cannot see (other jobs, clocks, thermals), on top of the drift between processes inside a session.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from helpers import make_profiles
from hwprofile.errors import ConfigError, SchemaError
from hwprofile.gate import MIN_SESSIONS_TO_TIGHTEN, merge_gates
from hwprofile.gate._calibration import (
    Observation,
    Session,
    drift,
    needed_threshold,
    observe,
    round_threshold,
    sessions_of,
    thresholds,
    with_session,
)
from hwprofile.gate._decide import DEFAULT_THRESHOLDS, GateConfig, evaluate
from hwprofile.profile import Profile, Record

DATA = Path(__file__).parent / "data" / "profiles"
mp = make_profiles()


def session(seed: int, factor: float = 1.0) -> list[Record]:
    return [Record.from_dict(r) for r in mp.profile(seed, slowdown=factor, processes=3)["records"]]


def drifted_sessions(n: int, sd: float, seed: int) -> list[list[Record]]:
    rng = np.random.default_rng(seed)
    return [session(seed * 100 + i, math.exp(rng.normal(0, sd))) for i in range(n)]


def calibrated(base: list[Record], aa: list[list[Record]]) -> dict:
    return thresholds([observe(base, s) for s in aa])


def test_drift_is_symmetric_and_thresholds_read_like_the_gate():
    assert drift(1.25) == pytest.approx(0.25) and drift(0.8) == pytest.approx(0.25)
    assert drift(0.8, higher_is_better=True) == pytest.approx(0.25)
    assert needed_threshold("latency", 0.25) == 0.25
    assert needed_threshold("throughput", 0.25) == pytest.approx(0.2)  # a drop below 0.8x = a 1.25x slowdown
    assert [round_threshold(t) for t in (0.0, 0.0123, 0.05, 0.0500001, 3.0)] == [0.01, 0.02, 0.05, 0.06, 0.99]


def test_observe_measures_the_drift_of_every_record():
    base, again = session(1), session(2, factor=1.10)
    s = observe(base, again, current_name="again.json", utc="2026-01-01T00:00:00+00:00")
    assert {(o.runner, o.metric) for o in s.observations} == {("ort:cpu", "latency"), ("ort:cpu", "throughput")}
    lat = next(o for o in s.observations if o.metric == "latency")
    assert lat.records == 8 and 0.05 < lat.drift_median < 0.16 and lat.drift_max >= lat.drift_median
    assert lat.outside > 0  # a 10% shift the intervals did not cover
    assert thresholds([s])["ort:cpu"]["latency"] == round_threshold(lat.drift_max)


def test_the_calibrated_sessions_themselves_pass_and_nothing_is_even_suspect():
    base = session(1)
    aa = drifted_sessions(3, sd=0.06, seed=7)
    config = GateConfig(calibrated=calibrated(base, aa))
    for s in aa:
        result = evaluate(base, s, config)
        assert result.exit_code == 0 and not result.having("suspect")


@pytest.mark.slow
@pytest.mark.parametrize("k", [3, 5])
def test_on_a_drifting_machine_calibration_bounds_later_aa_alarms_by_one_in_k_plus_1(k):
    """Session drift sd 8%: the 5% default fails 30% of A/A gates. Sessions are exchangeable, so a
    later session exceeds the largest drift of k calibration sessions with probability 1/(k+1): no
    more of the later A/A sessions may show even a suspect, and fewer still a regression."""
    base, later = session(1), drifted_sessions(20, sd=0.08, seed=11)
    default = [evaluate(base, s, GateConfig()) for s in later]
    assert sum(r.exit_code == 1 for r in default) >= 5
    flagged = failed = 0
    for seed in range(20, 30):  # ten independent calibrations of k sessions each
        config = GateConfig(calibrated=calibrated(base, drifted_sessions(k, sd=0.08, seed=seed)))
        results = [evaluate(base, s, config) for s in later]
        flagged += sum(bool(r.having("suspect", "regression")) for r in results)
        failed += sum(r.exit_code == 1 for r in results)
    assert flagged / 200 <= 1 / (k + 1)
    assert failed / 200 <= 0.5 / (k + 1) and failed / 200 < sum(r.exit_code == 1 for r in default) / 20 / 2


def test_on_a_quiet_machine_calibration_keeps_the_threshold_low_and_still_detects():
    base = session(1)
    config = GateConfig(calibrated=calibrated(base, drifted_sessions(3, sd=0.003, seed=5)))
    assert config.threshold("latency", "ort:cpu") <= DEFAULT_THRESHOLDS["cpu"]["latency"]
    slow = [evaluate(base, session(500 + i, 1.15), config) for i in range(10)]
    regressed = [v.status == "regression" for r in slow for v in r.verdicts]
    assert sum(regressed) / len(regressed) >= 0.95
    clean = [evaluate(base, s, config) for s in drifted_sessions(20, sd=0.003, seed=9)]
    assert all(r.exit_code == 0 for r in clean)


def test_thresholds_take_the_largest_need_over_sessions_and_options_still_win():
    a = Session("2026-01-01", "a", (Observation("ort:cpu", "latency", 8, 0.01, 0.031, 0),))
    b = Session("2026-01-02", "b", (Observation("ort:cpu", "latency", 8, 0.02, 0.072, 1),
                                    Observation("torch:cpu", "throughput", 8, 0.02, 0.25, 0)))
    assert thresholds([a, b]) == {"ort:cpu": {"latency": 0.08}, "torch:cpu": {"throughput": 0.2}}
    config = GateConfig(calibrated=thresholds([a, b]))
    assert config.threshold("latency", "ort:cpu") == 0.08 and config.threshold_source("latency", "ort:cpu") == \
        "calibrated"
    assert config.threshold("latency", "torch:cpu") == DEFAULT_THRESHOLDS["cpu"]["latency"]
    assert config.threshold_source("latency", "torch:cpu") == "default"
    given = GateConfig(thresholds={"latency": 0.2}, calibrated=thresholds([a, b]))
    assert given.threshold("latency", "ort:cpu") == 0.2 and given.threshold_source("latency", "ort:cpu") == "option"


def test_gate_sections_round_trip_merge_once_and_reject_malformed_data(tmp_path):
    s1 = Session("2026-01-01", "a", (Observation("ort:cpu", "latency", 8, 0.01, 0.031, 0),))
    s2 = Session("2026-01-02", "b", (Observation("ort:cpu", "latency", 8, 0.02, 0.052, 0),))
    gate = with_session(with_session({}, "dev", s1), "dev", s2)
    assert gate["dev"]["thresholds"] == {"ort:cpu": {"latency": 0.06}}
    p = Profile(devices={"dev": {}}, gate=gate)
    p.save(tmp_path / "p.json")
    assert sessions_of(Profile.load(tmp_path / "p.json").gate, "dev") == [s1, s2]
    merged = merge_gates([with_session({}, "dev", s1), gate, with_session({}, "other", s2)])
    assert sessions_of(merged, "dev") == [s1, s2] and sessions_of(merged, "other") == [s2]
    assert "gate" not in Profile().to_dict()  # files without calibration keep their old shape
    with pytest.raises(ConfigError, match="malformed"):
        sessions_of({"dev": {"sessions": [{"utc": "x"}]}}, "dev")
    bad = p.to_dict() | {"gate": []}
    with pytest.raises(SchemaError, match="gate"):
        Profile.from_dict(bad)
    with pytest.raises(ConfigError, match="nothing to calibrate"):
        observe(session(1), [Record.from_dict(r) for r in mp.profile(3, status="crashed")["records"]])


def test_one_quiet_session_does_not_tighten_the_default_but_five_do_and_a_wide_one_widens_at_once():
    """docs/ci.md: below the device type's default only from MIN_SESSIONS_TO_TIGHTEN sessions (a later session
    exceeds the largest of k with probability 1/(k+1): 1/2 after one, 1/6 after five)."""
    default = DEFAULT_THRESHOLDS["cpu"]["latency"]
    quiet = [Session(f"2026-01-0{i + 1}", f"s{i}", (Observation("ort:cpu", "latency", 8, 0.005, 0.012, 0),))
             for i in range(MIN_SESSIONS_TO_TIGHTEN)]
    for k in range(1, MIN_SESSIONS_TO_TIGHTEN):
        assert thresholds(quiet[:k]) == {"ort:cpu": {"latency": default}}
    assert thresholds(quiet) == {"ort:cpu": {"latency": 0.02}} and 0.02 < default
    wide = Session("2026-02-01", "w", (Observation("ort:cpu", "latency", 8, 0.05, 0.113, 3),))
    assert thresholds([wide]) == {"ort:cpu": {"latency": 0.12}}
    assert thresholds([*quiet, wide]) == {"ort:cpu": {"latency": 0.12}}
    gate = {}
    for s in quiet:
        gate = with_session(gate, "dev", s)
    assert gate["dev"]["thresholds"]["ort:cpu"]["latency"] == 0.02
