"""The gate as a library: ``hwprofile.check`` and ``calibrate_gate`` called directly, on the synthetic fixtures."""

import json
import shutil
from pathlib import Path

import pytest

import hwprofile
from helpers import fixture_profile as p
from hwprofile.errors import ConfigError
from hwprofile.gate import GateOptions, calibrate_gate
from hwprofile.gate._decide import DEFAULT_THRESHOLDS
from hwprofile.profile import Profile


def test_a_slower_profile_is_a_regression_with_exit_code_1(capsys):
    result = hwprofile.check(p("cpu-a.json"), p("cpu-slow.json"))
    assert isinstance(result, hwprofile.GateResult)
    assert not result.passed and result.exit_code == 1 and result.outcome == "regression"
    assert {v.status for v in result.verdicts} == {"regression"} and len(result.verdicts) == 8
    assert all(v.ratio > 1 + v.threshold and v.ci_low > 1 + v.threshold for v in result.verdicts)
    assert result.device_id == result.baseline_device == "synthetic-cpu" and result.baseline == p("cpu-a.json")
    assert result.threads_note == "CPU threads per runner: ort:cpu 2" and result.notes == (result.threads_note,)
    assert result.baseline_update == "" and result.measured is None
    assert capsys.readouterr() == ("", "")  # the library prints nothing


def test_another_run_of_the_same_configuration_passes_given_as_paths_or_profiles():
    by_path = hwprofile.check(p("cpu-a.json"), p("cpu-a2.json"), metrics=("latency", "throughput"))
    assert by_path.passed and by_path.exit_code == 0 and by_path.counts() == {"pass": 16}
    by_profile = hwprofile.check(Profile.load(p("cpu-a.json")), Profile.load(p("cpu-a2.json")),
                                 gate=GateOptions(metrics=("latency", "throughput")))
    assert by_profile.verdicts == by_path.verdicts and by_profile.baseline == "baseline"


def test_a_mismatch_is_refused_in_one_line_unless_allowed():
    with pytest.raises(ConfigError) as refused:
        hwprofile.check(p("cpu-a.json"), p("cpu-threads4.json"))
    text = str(refused.value)
    assert "thread setting" in text and "--allow-mismatch" in text and "\n" not in text
    heard = []
    result = hwprofile.check(p("cpu-a.json"), p("cpu-threads4.json"), allow_mismatch=True, on_message=heard.append)
    assert result.verdicts and heard and heard == list(result.messages)
    assert all(m.startswith("warning: baseline vs current:") for m in heard) and any("thread" in m for m in heard)
    with pytest.raises(ConfigError, match="holds no records for this device"):
        hwprofile.check(p("cpu-a.json"), p("gpu.json"))
    across = hwprofile.check(p("cpu-a.json"), p("gpu.json"), allow_mismatch=True)
    assert (across.device_id, across.baseline_device) == ("synthetic-gpu", "synthetic-cpu")
    assert across.passed and across.having("improvement")


@pytest.mark.parametrize("kwargs,needle", [
    ({"metrics": ("speed",)}, "unknown metric"),
    ({"thresholds": {"latency": 5}}, "fraction"),
    ({"confidence": 2}, "confidence"),
    ({"remeasure": -1}, "remeasure"),
    ({"gate": GateOptions(), "seed": 3}, "not both"),
    ({"device": "cpu"}, "not both"),  # a current profile and run options
])
def test_bad_options_are_config_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        hwprofile.check(p("cpu-a.json"), p("cpu-a2.json"), **kwargs)


def test_update_baseline_creates_then_replaces_only_after_a_pass(tmp_path):
    base = tmp_path / "ci.json"
    with pytest.raises(ConfigError, match="does not exist"):
        hwprofile.check(base, p("cpu-a.json"))
    created = hwprofile.check(base, p("cpu-a.json"), update_baseline=True)
    assert (created.baseline_update, created.baseline_records, created.passed) == ("created", 8, True)
    assert "saved 8 records" in created.messages[-1] and base.exists()
    before = base.read_bytes()
    slow = hwprofile.check(base, p("cpu-slow.json"), update_baseline=True)
    assert slow.exit_code == 1 and slow.baseline_update == "not updated" and base.read_bytes() == before
    again = hwprofile.check(str(base), p("cpu-a2.json"), update_baseline=True)
    assert again.passed and (again.baseline_update, again.baseline_records) == ("updated", 8)
    assert {r.measured_utc for r in Profile.load(base).records} == {"2026-01-02T00:00:00+00:00"}
    with pytest.raises(ConfigError, match="as a path"):
        hwprofile.check(Profile.load(base), p("cpu-a2.json"), update_baseline=True)


def test_without_a_current_profile_check_measures_now_with_one_thread_on_cpu(tmp_path, monkeypatch):
    """current=None: run options as SweepConfig fields; the sweep is faked with the cpu-a2 fixture."""
    import hwprofile.sweep._run

    seen = []

    def fake_sweep(config, out, resume=False, quiet=False, **kw):
        seen.append(config)
        profile = Profile.load(p("cpu-a2.json"))
        profile.records = [r.replace(settings={**r.settings.to_dict(), "threads": 1}) for r in profile.records]
        profile.save(out)
        return profile, Path(out), ["a note from the sweep"]

    monkeypatch.setattr(hwprofile.sweep, "run_sweep", fake_sweep)
    out = tmp_path / "now.json"
    heard = []
    result = hwprofile.check(p("cpu-a.json"), device="cpu", runners=["ort:cpu"], out=str(out), allow_mismatch=True,
                             on_message=heard.append)
    assert seen[0].runners == ("ort:cpu",) and seen[0].options == {"*": {"threads": 1}}
    assert result.measured == str(out) and out.exists() and result.verdicts
    assert heard[:2] == ["note: a note from the sweep", f"saved the measured profile to {out}"]
    assert "uses 1 thread per runner" in result.threads_note
    with pytest.raises(ConfigError, match="hwprofile.check"):
        hwprofile.check(p("cpu-a.json"), no_such_option=1)


def test_the_cli_prints_the_verdicts_of_the_library(cli):
    code, out, _ = cli("check", "--baseline", p("cpu-a.json"), p("cpu-slow.json"), "--json", "--metrics",
                       "latency,throughput")
    result = hwprofile.check(p("cpu-a.json"), p("cpu-slow.json"), metrics="latency,throughput")
    data = json.loads(out)
    assert code == result.exit_code == 1
    assert data["verdicts"] == json.loads(json.dumps([v.to_dict() for v in result.verdicts]))
    assert data["threads_note"] == result.threads_note and data["device_id"] == result.device_id


def test_calibrate_gate_saves_an_aa_session_that_check_then_uses(tmp_path):
    base = tmp_path / "ci.json"
    shutil.copy(p("cpu-a.json"), base)
    cal = calibrate_gate(base, p("cpu-a2.json"))
    assert cal.device_id == "synthetic-cpu" and cal.sessions == 1 and not cal.saturated
    t = cal.thresholds["ort:cpu"]["latency"]
    assert t == DEFAULT_THRESHOLDS["cpu"]["latency"]  # one quiet session does not tighten the default
    assert cal.session.observations[0].drift_max < 0.04
    assert cal.before == {"ort:cpu": {"latency": 0.05, "throughput": 0.05}}
    assert {o.metric for o in cal.session.observations} == {"latency", "throughput"}
    assert Profile.load(base).gate["synthetic-cpu"]["thresholds"] == cal.thresholds
    result = hwprofile.check(base, p("cpu-slow.json"))
    assert {v.threshold for v in result.verdicts} == {t} and result.calibration_sessions == 1
    with pytest.raises(ConfigError, match="already an A/A session"):
        calibrate_gate(base, p("cpu-a2.json"))
    with pytest.raises(ConfigError, match="own measurements"):
        calibrate_gate(base, p("cpu-a.json"))
    wider = calibrate_gate(base, p("cpu-slow.json"))  # a 15% slower session widens the threshold
    assert wider.sessions == 2 and wider.before["ort:cpu"]["latency"] == t
    assert wider.thresholds["ort:cpu"]["latency"] > 0.10
