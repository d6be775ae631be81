"""``run --warmup N --iterations N`` (fixed counts, as timm's), the plan's estimate printed when ``run`` starts,
and retries shown on the progress bar (measurements faked; the timing loop on the scripted FakeRunner)."""

from __future__ import annotations

import re

import pytest

import hwprofile.sweep._local
import hwprofile.sweep._run
from hwprofile.cli import build_parser
from hwprofile.cli._run_args import config_from_args
from hwprofile.cli.run import duration
from hwprofile.errors import ConfigError
from hwprofile.profile import TimingConfig, Workload
from hwprofile.runners._fake import FakeRunner
from hwprofile.sweep import SweepConfig, run_sweep
from hwprofile.trackers.timing import run_timed, sample, warm_up
from sweep_fakes import fake_measure


def _runner(latencies, sleep=False):
    r = FakeRunner()
    r.load(Workload("spec", {"name": "fake"}, None, 1, 8, options={"latencies_ms": latencies, "sleep": sleep}))
    return r


def _config(*argv: str) -> SweepConfig:
    return config_from_args(build_parser().parse_args(["run", *argv]))


# ------------------------------------------------------------------------------------------ fixed counts

def test_iterations_times_exactly_that_many_runs_however_slow_or_noisy():
    slow = _runner([20.0], sleep=True)
    samples, reason, spent = sample(slow, TimingConfig(iterations=12, budget_s=0.01))
    assert reason == "count" and len(samples) == 12 and spent >= 12 * 0.02  # the budget does not stop it
    samples, reason, _ = sample(_runner([5.0]), TimingConfig(iterations=40))
    assert reason == "count" and len(samples) == 40  # a narrow interval does not stop it either


def test_warmup_is_an_exact_count_even_for_a_slow_unit():
    r = _runner([30.0], sleep=True)
    iters, _ = warm_up(r, TimingConfig(warmup_iters=4, warmup_s=0.0, budget_s=0.01))
    assert iters == 4 and r._calls == 4
    iters, _ = warm_up(_runner([30.0], sleep=True), TimingConfig(warmup_iters=100, warmup_s=5, budget_s=0.05))
    assert iters < 5  # the default, time-based warm-up still stops early for a slow unit


def test_run_timed_reports_the_fixed_counts():
    run = run_timed(_runner([2.0]), TimingConfig(warmup_iters=3, warmup_s=0.0, iterations=7,
                                                 throughput_window_s=0), batch=1)
    assert (run.warmup_iters, len(run.samples_ms), run.stop_reason) == (3, 7, "count")


def test_the_options_become_the_timing_config():
    config = _config("--warmup", "5", "--iterations", "50")
    assert config.timing == {"warmup_iters": 5, "warmup_s": 0.0, "iterations": 50}
    assert TimingConfig(**config.timing).to_dict()["iterations"] == 50
    assert "iterations" not in TimingConfig().to_dict()  # adaptive records keep their settings as before
    assert _config().timing == {}


@pytest.mark.parametrize("argv,needle", [
    (["--iterations", "2"], "--iterations: '2': expected an integer from 3"),
    (["--warmup", "-1"], "--warmup: '-1': expected an integer from 0"),
    (["--iterations", "ten"], "expected an integer"),
])
def test_bad_counts_are_one_line(cli, argv, needle):
    code, _, err = cli("run", *argv, "--quiet")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_iterations_and_a_time_budget_contradict(cli):
    code, _, err = cli("run", "--iterations", "20", "--seconds-per-config", "1", "--quiet")
    assert code == 2 and "give one of them" in err


def test_check_takes_the_same_counts():
    args = build_parser().parse_args(["check", "--baseline", "b.json", "--warmup", "3", "--iterations", "30"])
    assert config_from_args(args).timing == {"warmup_iters": 3, "warmup_s": 0.0, "iterations": 30}


def test_the_counts_reach_the_measurement(tmp_path):
    seen = []

    def measure(runner, workload, timing=None, **kw):
        seen.append(timing)
        return fake_measure(runner, workload, timing)

    config = _config("--device", "cpu", "--runners", "torch:cpu", "--models", "RegNetX-200MF", "--scales", "1",
                     "--batch-sizes", "1", "--warmup", "2", "--iterations", "9", "--retries", "0")
    run_sweep(config, tmp_path / "p.json", quiet=True, measure_fn=measure)
    assert [(t.warmup_iters, t.warmup_s, t.iterations) for t in seen] == [(2, 0.0, 9)]


# ------------------------------------------------------------------------------- the estimate, retries

def test_duration_reads_like_a_person_would_say_it():
    assert [duration(s) for s in (4.2, 59.6, 190, 3725)] == ["4 s", "1 min 00 s", "3 min 10 s", "1 h 02 min"]


def test_run_prints_the_plans_estimate_when_it_starts(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(hwprofile.sweep._local, "measure", fake_measure)
    monkeypatch.setattr(hwprofile.sweep._run, "measure_peaks", lambda device: {"error": "not measured in tests"})
    out = tmp_path / "p.json"
    argv = ("run", "--device", "cpu", "--runners", "torch:cpu", "--models", "RegNetX-200MF", "--strategies", "w",
            "--scales", "1,2", "--batch-sizes", "1,8", "--retries", "0", "--out", str(out), "--quiet")
    code, _, err = cli(*argv)
    assert code == 0, err
    first = err.splitlines()[0]
    assert re.fullmatch(r"hwprofile run: 4 records on cpu \(torch:cpu\), estimated \d+ s \(a rough planning "
                        r"figure; run --plan lists it\)", first), first
    code, plan, _ = cli("run", "--plan", *argv[1:-3], "--json")
    assert code == 0 and f"estimated {duration(__import__('json').loads(plan)['estimated_s'])}" in first
    code, _, err = cli("run", "--resume", str(out), "--quiet")  # nothing left to measure
    assert code == 0 and err.splitlines()[0].startswith("hwprofile run: 0 of 4 records left on cpu")


def test_a_refused_run_prints_no_estimate(cli, tmp_path):
    (tmp_path / "p.json").write_text("keep me")
    code, _, err = cli("run", "--device", "cpu", "--out", str(tmp_path / "p.json"), "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "already exists" in err


class _Bar:
    """Records what a progress bar is told."""

    def __init__(self):
        self.postfixes: list[str] = []

    def set_postfix_str(self, text, refresh=True):
        self.postfixes.append(text)

    def update(self, n=1):
        pass


def test_the_progress_bar_says_a_record_is_being_retried_and_why(tmp_path, monkeypatch):
    import contextlib

    bar = _Bar()
    monkeypatch.setattr(hwprofile.sweep._run, "progress", lambda total, quiet, initial=0: contextlib.nullcontext(bar))

    def loaded(*a, **kw):
        out = fake_measure(*a, **kw)
        out["settings"] = {"foreign_cpu_cores": [1.5]}  # another process kept 1.5 cores busy: disturbed
        return out

    config = SweepConfig(device="cpu", runners=("torch:cpu",), models=("RegNetX-200MF",), scales=(1.0,),
                         batch_sizes=(1,), retries=2, retry_backoff_s=0.0)
    prof, _, _ = run_sweep(config, tmp_path / "p.json", quiet=True, measure_fn=loaded)
    assert prof.records[0].quality == "disturbed"
    retries = [p for p in bar.postfixes if "retry" in p]
    assert retries == [f"RegNetX-200MF b1 torch:cpu - disturbed: {prof.records[0].quality_reasons[0]}; retry {i}/2"
                       for i in (1, 2)]


def test_timing_config_refuses_counts_out_of_range():
    with pytest.raises(ConfigError, match="iterations"):
        TimingConfig(iterations=1)
    with pytest.raises(ConfigError, match="warmup_iters"):
        TimingConfig(warmup_iters=10**6)
