"""The regression gate on seeded synthetic data drawn like real noise (no timing in these tests).

Noise model (tests/data/profiles/make_profiles.py): each process's median drifts log-normally
(sd 2.1%, i.e. max/min-1 of about 5% over 5 processes, the way tech.md section 5 measures the 3-8%
drift of the 2-core box), samples inside a process scatter with a 5% CV, 1% of them are 1.3-2x
outliers. Each comparison holds 8 records (4 models x batch 1, 8) measured in 3 processes.
"""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from helpers import make_profiles
from hwprofile.analysis import identity, pool
from hwprofile.cli._check_tables import junit_xml
from hwprofile.errors import ConfigError
from hwprofile.gate import device_type
from hwprofile.gate._decide import DEFAULT_THRESHOLDS, GateConfig, evaluate, evaluate_with_remeasure, suspects
from hwprofile.profile import Record

DATA = Path(__file__).parent / "data" / "profiles"
mp = make_profiles()

PROCESSES = 3


def records(seed, slowdown=1.0, **kw) -> list[Record]:
    kw.setdefault("processes", PROCESSES)
    return [Record.from_dict(r) for r in mp.profile(seed, slowdown=slowdown, **kw)["records"]]


def test_noise_model_matches_the_measured_drift():
    """The generator's drift between 5 processes averages ~5% max/min-1 (tech.md: 3.5-8.2%)."""
    spreads = []
    for seed in range(40):
        for r in records(seed, processes=5):
            meds = r.latency.medians_ms
            spreads.append(max(meds) / min(meds) - 1)
    spreads.sort()
    assert 0.04 < spreads[len(spreads) // 2] < 0.06
    sds = [np.subtract(*np.percentile(s, [75, 25])) / 1.349 / np.median(s)  # robust sd inside a process
           for r in records(1) for s in r.latency.samples_ms]
    assert 0.04 < np.median(sds) < 0.06


def test_no_false_alarm_in_20_aa_comparisons():
    config = GateConfig()
    results = [evaluate(records(1000 + i), records(2000 + i), config) for i in range(20)]
    assert [r.exit_code for r in results] == [0] * 20
    assert sum(len(r.having("regression")) for r in results) == 0
    assert sum(len(r.verdicts) for r in results) == 160


def test_interval_coverage_on_aa_data():
    """With no threshold, a 90% interval should miss the true ratio (1) in about 10% of A/A records.

    An interval from the samples of one process alone misses it in ~40% (drift is left out)."""
    config = GateConfig(thresholds={"latency": 0.0})
    verdicts = [v for i in range(20) for v in evaluate(records(1000 + i), records(2000 + i), config).verdicts]
    missed = sum(v.ci_low > 1 or v.ci_high < 1 for v in verdicts) / len(verdicts)
    assert 0.02 <= missed <= 0.15


def test_detects_a_15_percent_slowdown_in_95_percent_of_trials():
    config = GateConfig()
    verdicts = [v for i in range(20)
                for v in evaluate(records(3000 + i), records(4000 + i, slowdown=1.15), config).verdicts]
    detected = sum(v.status == "regression" for v in verdicts) / len(verdicts)
    assert len(verdicts) == 160 and detected >= 0.95


def test_remeasuring_suspects_pools_processes_and_keeps_aa_clean():
    config = GateConfig()
    base, cur = records(5000), records(5001, slowdown=1.07)  # a small change: suspects, not all regressions

    def remeasure(idents):
        return [r for r in records(5002, slowdown=1.07) if identity(r) in idents]

    first = evaluate(base, cur, config)
    todo = suspects(first)
    assert todo, "a 7% slowdown against a 5% threshold leaves suspects"
    result, pooled = evaluate_with_remeasure(base, cur, config, remeasure)
    assert len(result.remeasured) == len(todo)
    again = {identity(r): r for r in pooled}
    assert all(again[i].latency.repeats == 2 * PROCESSES for i in todo)
    aa, _ = evaluate_with_remeasure(records(6000), records(6001), config,
                                    lambda ids: [r for r in records(6002) if identity(r) in ids])
    assert aa.exit_code == 0


def test_pool_concatenates_processes():
    a, b = records(7000)[0], records(7001)[0]
    p = pool(a, b)
    assert p.latency.repeats == 2 * PROCESSES and len(p.latency.samples_ms) == 2 * PROCESSES
    assert min(a.median_ms, b.median_ms) * 0.9 < p.median_ms < max(a.median_ms, b.median_ms) * 1.1


def test_statuses_and_exit_codes():
    base = records(1)
    failed = [r.replace(status="crashed", latency=None, reason="boom") for r in records(2)]
    res = evaluate(base, failed)
    assert res.exit_code == 3 and len(res.having("failed")) == 8  # a broken device is not a regression
    mixed = records(3, slowdown=1.3)[:4] + failed[4:]
    assert evaluate(base, mixed).exit_code == 1  # measured slowdowns still fail the gate
    skipped = [r.replace(status="skipped", latency=None) for r in records(4)]
    assert evaluate(base, skipped).exit_code == 0
    faster = evaluate(base, records(5, slowdown=0.7))
    assert faster.exit_code == 0 and len(faster.having("improvement")) == 8
    with pytest.raises(ConfigError, match="no record in common"):
        evaluate(base, records(6, models=(("RegNetY-200MF", None, 1.0),)))


def test_per_metric_options():
    base = records(1)
    bigger = records(2, memory_mb=200.0)
    assert evaluate(base, bigger).exit_code == 0  # memory is not gated by default
    res = evaluate(base, bigger, GateConfig(metrics=("latency", "memory")))
    assert res.exit_code == 1 and {v.metric for v in res.having("regression")} == {
        "memory:cpu_peak_rss_increase_mb"}
    slow = records(3, slowdown=1.15)
    res = evaluate(base, slow, GateConfig(metrics=("throughput",)))
    assert res.exit_code == 1 and {v.metric for v in res.verdicts} == {"throughput"}
    loose = evaluate(base, slow, GateConfig(thresholds={"latency": 0.5}))
    assert loose.exit_code == 0
    for bad in (dict(metrics=("speed",)), dict(thresholds={"latency": 5}), dict(confidence=1.5)):
        with pytest.raises(ConfigError):
            GateConfig(**bad)


def test_device_type_thresholds():
    assert device_type("ort:cpu") == "cpu" and device_type("trt") == "cuda" and device_type("torch:cuda") == "cuda"
    c = GateConfig()
    assert c.threshold("latency", "ort:cpu") == DEFAULT_THRESHOLDS["cpu"]["latency"]
    assert c.threshold("latency", "ort:cuda") == DEFAULT_THRESHOLDS["cuda"]["latency"]


def test_junit_xml():
    base = records(1)
    cur = records(2, slowdown=1.3)[:4] + [r.replace(status="oom", latency=None, reason="out of memory")
                                          for r in records(2)[4:]]
    root = ET.fromstring(junit_xml(evaluate(base, cur)))
    suite = root.find("testsuite")
    assert suite.get("tests") == "8" and suite.get("failures") == "4" and suite.get("errors") == "4"
    assert len(suite.findall("testcase/failure")) == 4 and "limit" in suite.find("testcase/failure").get("message")


def test_pool_recomputes_every_statistic_with_the_measurement_function():
    """After pooling, median/max/noisy/repeat_spread are those latency_stats gives for all processes (issue 11)."""
    from hwprofile.profile import latency_stats

    first, extra = records(1)[0], records(2, slowdown=1.5)[0]
    p = pool(first, extra)
    samples = first.latency.processes() + extra.latency.processes()
    expected = latency_stats(samples, first.latency.timing_method)
    assert p.latency.median_ms == pytest.approx(float(np.median([np.median(s) for s in samples])))
    for name in ("median_ms", "max_ms", "noisy", "repeat_spread", "cv", "p90_ms", "repeats"):
        assert getattr(p.latency, name) == getattr(expected, name), name
    assert p.latency.max_ms == max(max(s) for s in samples)
    assert p.latency.repeat_spread > 0.3  # a 1.5x slower set of processes is not hidden by a stale copy
    assert p.latency.pooled_processes == len(samples)
