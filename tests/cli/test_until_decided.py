"""``hwprofile run --until-decided --budget S`` through the real CLI, with a scripted measurement.

The measurement is faked (latency exactly proportional to a model's activations times seeded lognormal
noise, in the order the sweep asks), and so is the budget's clock (each measurement advances it by
``STEP_S``): the rounds are deterministic and do not depend on how busy the machine is.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import hwprofile.sweep._local
import hwprofile.sweep._run
from hwprofile.profile import Profile
from hwprofile.zoo import complexity, spec_from_dict

STEP_S = 5.0
SMALL = ["run", "--device", "cpu", "--runners", "torch:cpu", "--models", "EfficientNet-B0", "--strategies", "w,r",
         "--scales", "1,4", "--batch-sizes", "1", "--retries", "0", "--quiet"]


@pytest.fixture
def scripted(monkeypatch):
    """Latency = c * acts^beta * exp(N(0, sigma)); the budget's clock advances STEP_S per measurement."""
    state = {"now": 0.0, "calls": 0, "rng": np.random.default_rng(7), "sigma": 0.15, "beta": 1.0}

    def measure(runner, workload, timing=None, timeout_s=60.0, device="cpu", **kw):
        state["now"] += STEP_S
        state["calls"] += 1
        acts = complexity(spec_from_dict(workload.spec)).acts
        ms = 1e-5 * workload.batch * acts ** state["beta"] * float(np.exp(state["rng"].normal(0, state["sigma"])))
        samples = [ms * (1 + 0.002 * k) for k in (-1, 0, 1)]
        return {"runner": runner, "status": "ok", "reason": None,
                "latency": {"median_ms": ms, "p90_ms": samples[-1], "cv": 0.002, "repeats": 1, "iterations": 3,
                            "samples_ms": [samples], "medians_ms": [ms], "median_ci_ms": [samples[0], samples[-1]],
                            "timing_method": "scripted"},
                "throughput": {"samples_per_s": 1000 * workload.batch / ms}, "memory": {}, "settings": {},
                "wall_s": 0.0}

    monkeypatch.setattr(hwprofile.sweep._local, "measure", measure)
    monkeypatch.setattr(hwprofile.sweep._run, "measure_peaks", lambda device: {"error": "not measured in tests"})
    monkeypatch.setattr(hwprofile.sweep._run, "clock", lambda: state["now"])
    return state


@pytest.mark.slow
@pytest.mark.parametrize("sigma,seed,repeats", [(0.15, 7, False), (0.5, 3, True)])
def test_until_decided_adds_models_and_repeats_until_the_row_is_decided(cli, tmp_path, scripted, sigma, seed,
                                                                        repeats):
    """Quiet: the models the forecast names decide it. Loud: repeats too, pooled into their records."""
    scripted.update(sigma=sigma, rng=np.random.default_rng(seed))
    out = tmp_path / "p.json"
    code, stdout, err = cli(*SMALL, "--until-decided", "--budget", "100000", "--out", str(out), "--json")
    assert code == 0, err
    prof = Profile.load(out)
    (row,) = json.loads(stdout)["follows"]
    assert row["verdict"] == "acts" and row["n"] >= 5, row
    labels = {r.label for r in prof.records}
    assert {"EfficientNet-B0", "EfficientNet-B0 w x4", "EfficientNet-B0 r x4"} < labels  # the sweep itself
    assert len(labels) > 3  # models the rounds added (the sweep alone is too small to fit)
    log = prof.sweeps[-1]["until_decided"]
    assert log["stop"] == "every row is decided" and log["rounds"] and log["rows"][0]["why"] is None
    assert sum(r["added"] for r in log["rounds"]) == len(labels) - 3
    assert scripted["calls"] == 3 + sum(r["added"] + r["repeated"] for r in log["rounds"])
    assert bool(sum(r["repeated"] for r in log["rounds"])) is repeats
    if repeats:  # pooled into their records as more processes, kept (their spread is weight, not a fault)
        assert any((r.latency.repeats or 1) > 1 for r in prof.records)
        assert all(r.quality != "disturbed" for r in prof.records)
    (head,) = [line for line in err.splitlines() if line.startswith("until decided:")]
    assert head.endswith("every row is decided")
    assert json.loads(stdout)["until_decided"]["stop"] == "every row is decided"


def test_until_decided_says_which_rows_stayed_undecided_and_why(cli, tmp_path, scripted):
    """The budget is spent on the sweep itself: the row stays undecided, and the run says why."""
    out = tmp_path / "p.json"
    code, _, err = cli(*SMALL, "--until-decided", "--budget", str(3 * STEP_S), "--out", str(out))
    assert code == 0, err
    assert scripted["calls"] == 3
    lines = err.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("until decided:"))
    assert "0 rounds" in lines[head] and "budget of 15 s is spent" in lines[head]
    assert lines[head + 1].startswith("  torch:cpu b1 infer stayed undecided: budget spent;")
    assert "too few usable records" in lines[head + 1]
    log = Profile.load(out).sweeps[-1]["until_decided"]
    assert log["rows"][0]["verdict"] == "not distinguishable" and "budget spent" in log["rows"][0]["why"]


@pytest.mark.parametrize("argv,needle", [
    (["--until-decided"], "--until-decided needs --budget"),
    (["--until-decided", "--budget", "60", "--executor", "ray"], "--executor local"),
])
def test_until_decided_refuses_what_it_cannot_do(cli, tmp_path, scripted, argv, needle):
    code, _, err = cli(*SMALL, *argv, "--out", str(tmp_path / "p.json"))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.json").exists() and scripted["calls"] == 0
