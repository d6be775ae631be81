"""The timing loop on the scripted FakeRunner: warm-up rules, adaptive stopping, throughput."""

import random

import pytest

from hwprofile.profile import TimingConfig, Workload
from hwprofile.runners._fake import FakeRunner
from hwprofile.trackers.timing import run_timed, sample, throughput, warm_up


def _runner(latencies, sleep=False):
    r = FakeRunner()
    r.load(Workload("spec", {"name": "fake"}, None, 4, 8, options={"latencies_ms": latencies, "sleep": sleep}))
    return r


def test_constant_latency_stops_on_the_ci_after_min_iters():
    samples, reason, _ = sample(_runner([5.0]), TimingConfig(min_iters=12, target_rel_ci=0.01))
    assert reason == "ci" and len(samples) == 12 and set(samples) == {5.0}


def test_noisy_latency_runs_longer_then_stops_at_max_iters():
    rng = random.Random(0)
    noisy = [rng.uniform(1.0, 9.0) for _ in range(997)]
    samples, reason, _ = sample(_runner(noisy), TimingConfig(min_iters=10, max_iters=300, budget_s=60))
    assert reason == "max_iters" and len(samples) == 300


def test_noisy_latency_stops_once_the_ci_is_narrow_enough():
    values = [10.0 + 0.1 * (i % 11) for i in range(11)]
    samples, reason, _ = sample(_runner(values), TimingConfig(min_iters=10, max_iters=10000, target_rel_ci=0.01))
    assert reason == "ci" and 10 < len(samples) < 10000


def test_budget_stops_slow_units():
    samples, reason, spent = sample(_runner([20.0], sleep=True), TimingConfig(min_iters=1000, budget_s=0.15))
    assert reason == "budget" and 3 <= len(samples) < 1000 and spent >= 0.15
    assert all(s >= 20.0 for s in samples)  # real sleeps timed with perf_counter_ns


def test_warm_up_by_count_and_time():
    r = _runner([1.0])
    iters, _ = warm_up(r, TimingConfig(warmup_iters=7, warmup_s=0.0))
    assert iters == 7 and r._calls == 7
    iters, seconds = warm_up(_runner([2.0], sleep=True), TimingConfig(warmup_iters=1, warmup_s=0.05))
    assert iters >= 2 and seconds >= 0.05
    iters, _ = warm_up(_runner([30.0], sleep=True), TimingConfig(warmup_iters=100, warmup_s=5, budget_s=0.05))
    assert iters < 5  # a slow unit is not warmed up for minutes


def test_throughput_is_measured_back_to_back():
    t = throughput(_runner([2.0], sleep=True), batch=4, window_s=0.1)
    assert t["window_s"] >= 0.1 and t["batch"] == 4 and t["iterations"] >= 2
    assert t["samples_per_s"] == pytest.approx(t["iterations"] * 4 / t["window_s"])
    assert t["samples_per_s"] < 4 / 0.002  # sleeping 2 ms per unit caps it
    assert throughput(_runner([1.0]), batch=1, window_s=0) is None


def test_run_timed():
    run = run_timed(_runner([3.0]), TimingConfig(warmup_iters=2, warmup_s=0, throughput_window_s=0.01), batch=4)
    assert run.warmup_iters == 2 and run.stop_reason == "ci" and run.throughput["batch"] == 4
    assert set(run.to_dict()) == {"samples_ms", "stop_reason", "warmup_iters", "warmup_s", "timed_s", "throughput",
                                  "energy", "gpu_clocks"}
    assert run.energy is None and run.gpu_clocks is None  # no meter, no clock window given
