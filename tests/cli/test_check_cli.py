"""``hwprofile check``: exit codes, baselines, outputs and bad input, on synthetic fixture profiles."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import fixture_profile as p  # noqa: E402
from helpers import has_cuda, make_profiles, one_line_error
from hwprofile.profile import Profile


def test_pass_on_another_run_of_the_same_configuration(cli):
    code, out, err = cli("check", "--baseline", p("cpu-a.json"), p("cpu-a2.json"))
    assert code == 0, err
    assert "hwprofile check: PASS" in out and "8 pass" in out


def test_regression_exits_1(cli):
    code, out, _ = cli("check", "--baseline", p("cpu-a.json"), p("cpu-slow.json"))
    assert code == 1 and "REGRESSION" in out


def test_failed_measurements_exit_3_not_1(cli):
    code, out, _ = cli("check", "--baseline", p("cpu-a.json"), p("cpu-failed.json"))
    assert code == 3 and "FAILED" in out and "crashed" in out


def test_outputs_json_junit_and_step_summary(cli, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit = tmp_path / "out" / "junit.xml"
    code, out, _ = cli("check", "--baseline", p("cpu-a.json"), p("cpu-slow.json"), "--junit", str(junit), "--json",
                       "--metrics", "latency,throughput")
    data = json.loads(out)
    assert code == 1 and data["exit_code"] == 1 and data["outcome"] == "regression"
    assert {v["metric"] for v in data["verdicts"]} == {"latency", "throughput"}
    assert all({"ratio", "ci_low", "ci_high", "threshold", "status"} <= set(v) for v in data["verdicts"])
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "16" and int(suite.get("failures")) == data["counts"]["regression"]
    text = summary.read_text()
    assert text.startswith("# earlier step\n") and "## hwprofile check: REGRESSION" in text and "| REGRESSION |" in text


def test_thresholds_and_metrics_options(cli):
    code, _, _ = cli("check", "--baseline", p("cpu-a.json"), p("cpu-slow.json"), "--latency-threshold", "0.4")
    assert code == 0
    code, out, _ = cli("check", "--baseline", p("cpu-a.json"), p("cpu-slow.json"), "--metrics", "memory", "--json")
    assert code == 0 and {v["metric"] for v in json.loads(out)["verdicts"]} == {"memory:cpu_peak_rss_increase_mb"}


def test_first_use_creates_the_baseline_and_never_overwrites_without_the_flag(cli, tmp_path):
    base = tmp_path / "baselines" / "ci.json"
    code, _, err = cli("check", "--baseline", str(base), p("cpu-a.json"))
    one_line_error(code, err, "does not exist")
    assert not base.exists()
    code, _, err = cli("check", "--baseline", str(base), p("cpu-a.json"), "--update-baseline")
    assert code == 0 and "saved 8 records" in err and base.exists()
    before = base.read_bytes()
    code, _, _ = cli("check", "--baseline", str(base), p("cpu-slow.json"))
    assert code == 1 and base.read_bytes() == before
    code, _, err = cli("check", "--baseline", str(base), p("cpu-slow.json"), "--update-baseline")
    assert code == 1 and "not updated" in err and base.read_bytes() == before
    code, _, err = cli("check", "--baseline", str(base), p("cpu-a2.json"), "--update-baseline")
    assert code == 0 and "updated" in err
    assert {r.measured_utc for r in Profile.load(base).records} == {"2026-01-02T00:00:00+00:00"}


def test_update_baseline_adds_a_device_and_keeps_the_others(cli, tmp_path):
    base = tmp_path / "ci.json"
    shutil.copy(p("cpu-a.json"), base)
    code, _, err = cli("check", "--baseline", str(base), p("gpu.json"))
    one_line_error(code, err, "holds no records for this device (synthetic-gpu)")
    code, _, err = cli("check", "--baseline", str(base), p("gpu.json"), "--update-baseline")
    assert code == 0, err
    merged = Profile.load(base)
    assert set(merged.devices) == {"synthetic-cpu", "synthetic-gpu"} and len(merged.records) == 16
    code, _, _ = cli("check", "--baseline", str(base), p("cpu-a2.json"))  # the cpu part still gates
    assert code == 0


def test_failed_run_never_becomes_a_baseline(cli, tmp_path):
    base = tmp_path / "ci.json"
    code, _, err = cli("check", "--baseline", str(base), p("cpu-failed.json"), "--update-baseline")
    assert code == 3 and "not written" in err and not base.exists()


def test_another_devices_baseline_with_allow_mismatch(cli):
    code, out, err = cli("check", "--baseline", p("cpu-a.json"), p("gpu.json"), "--allow-mismatch")
    assert code == 0 and "warning" in err  # the GPU is far faster: improvements, no regression
    assert "improvement" in out


@pytest.mark.parametrize("baseline,current,needle", [
    ("schema-v3.json", "cpu-a.json", "schema version 3"),
    ("cpu-a.json", "schema-v3.json", "schema version 3"),
    ("corrupt.json", "cpu-a.json", "not valid JSON"),
    ("cpu-a.json", "corrupt.json", "not valid JSON"),
    ("cpu-a.json", "cpu-other-models.json", "no record in common"),
    ("cpu-a.json", "gpu.json", "--allow-mismatch"),
    ("cpu-a.json", "cpu-threads4.json", "thread setting"),
    ("cpu-a.json", "cpu-other-ort.json", "backend version"),
    ("cpu-a.json", "nothere.json", "does not exist"),
])
def test_bad_input_one_line_exit_2(cli, baseline, current, needle):
    code, _, err = cli("check", "--baseline", p(baseline), p(current))
    one_line_error(code, err, needle)


@pytest.mark.parametrize("extra,needle", [
    (["--models", "EfficientNet-B0"], "not both"),
    (["--metrics", "speed"], "unknown metric"),
    (["--latency-threshold", "5"], "fraction"),
    (["--confidence", "2"], "confidence"),
    (["--remeasure", "-1"], "--remeasure"),
])
def test_bad_options_one_line_exit_2(cli, extra, needle):
    code, _, err = cli("check", "--baseline", p("cpu-a.json"), p("cpu-a2.json"), *extra)
    one_line_error(code, err, needle)


def test_unavailable_device_exits_3(cli, tmp_path):
    """Measuring on a GPU that is not there is an environment failure, never a regression."""
    pytest.importorskip("hwprofile.measure")
    from hwprofile import env

    if env.gpu_count() > 0 or has_cuda():
        pytest.skip("this machine has a GPU")
    code, _, err = cli("check", "--baseline", p("cpu-a.json"), "--device", "cuda:0", "--runners", "ort:cuda",
                       "--models", "RegNetX-200MF", "--scales", "1", "--batch-sizes", "1", "--quiet",
                       "--out", str(tmp_path / "cur.json"))
    assert code == 3 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err




def test_remeasure_interleaves_suspects_and_pools_processes(cli, tmp_path, monkeypatch):
    """--remeasure N: N rounds of one process per suspect, A B A B, pooled before deciding (sweeps faked)."""

    import hwprofile.measure
    import hwprofile.sweep._run

    mp = make_profiles()
    current = tmp_path / "cur.json"
    current.write_text(json.dumps(mp.profile(77, slowdown=1.07, processes=3)))
    calls = []

    def fake_sweep(config, out, resume=False, quiet=False, measure_fn=None, **kw):
        assert config.timing["repeats"] == 1 and len(config.models) == len(config.batch_sizes) == 1
        calls.append((config.models[0], config.strategies[0] if config.scales[0] != 1 else None,
                      config.scales[0], config.batch_sizes[0]))
        model = (config.models[0], calls[-1][1], config.scales[0])
        data = mp.profile(len(calls), slowdown=1.07, processes=1, models=(model,), batches=config.batch_sizes)
        profile = Profile.from_dict(data)
        profile.save(out)
        return profile, Path(out), []

    monkeypatch.setattr(hwprofile.sweep, "run_sweep", fake_sweep)
    monkeypatch.setattr("hwprofile.gate._measure.fingerprint", lambda device: {})
    monkeypatch.setattr("hwprofile.gate._measure.device_id", lambda fp: "synthetic-cpu")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("check", "--baseline", p("cpu-a.json"), str(current), "--remeasure", "2", "--json")
    data = json.loads(out)
    suspects = data["remeasured"]
    assert suspects and code in (0, 1), err
    n = len(suspects)
    assert len(calls) == 2 * n and calls[:n] == calls[n:]  # round 1 then round 2: interleaved
    again = {(v["identity"]["model"], v["identity"]["batch"], v["identity"]["scale"]): v for v in data["verdicts"]}
    for s in suspects:
        assert again[(s["model"], s["batch"], s["scale"])]["processes"] == [5, 5]  # baseline 5; current 3 + 2 new
    saved = list((tmp_path / "runs").glob("*.remeasured.json"))
    assert len(saved) == 1 and Profile.load(saved[0]).records


def test_calibrate_stores_aa_drift_and_check_uses_it(cli, tmp_path):
    base = tmp_path / "ci.json"
    shutil.copy(p("cpu-a.json"), base)
    records_before = [r.to_dict() for r in Profile.load(base).records]
    code, out, err = cli("check", "--baseline", str(base), p("cpu-a2.json"), "--calibrate")
    assert code == 0, err
    assert "A/A session 1 saved" in out and "max drift" in out and "1/2" in out
    saved = Profile.load(base)
    assert [r.to_dict() for r in saved.records] == records_before  # the records are untouched
    calibrated = saved.gate["synthetic-cpu"]["thresholds"]["ort:cpu"]["latency"]
    assert 0.01 <= calibrated < 0.10
    code, out, _ = cli("check", "--baseline", str(base), p("cpu-slow.json"), "--json")
    data = json.loads(out)
    assert {v["threshold"] for v in data["verdicts"]} == {calibrated} and data["config"]["calibrated"]
    code, out, _ = cli("check", "--baseline", str(base), p("cpu-a2.json"))
    assert code == 0 and "calibrated on this device from 1 A/A session" in out
    code, out, _ = cli("check", "--baseline", str(base), p("cpu-a2.json"), "--latency-threshold", "0.3", "--json")
    assert {v["threshold"] for v in json.loads(out)["verdicts"]} == {0.3}
    # calibrating while the machine is 15% slower widens the threshold until that no longer fails
    code, out, _ = cli("check", "--baseline", str(base), p("cpu-slow.json"), "--calibrate")
    assert code == 0 and "A/A session 2 saved" in out
    assert Profile.load(base).gate["synthetic-cpu"]["thresholds"]["ort:cpu"]["latency"] > 0.10
    code, _, _ = cli("check", "--baseline", str(base), p("cpu-slow.json"))
    assert code == 0


def test_calibrate_bad_input_and_failures_save_nothing(cli, tmp_path):
    missing = tmp_path / "none.json"
    code, _, err = cli("check", "--baseline", str(missing), p("cpu-a2.json"), "--calibrate")
    one_line_error(code, err, "--calibrate needs one of this device")
    assert not missing.exists()
    base = tmp_path / "ci.json"
    shutil.copy(p("cpu-a.json"), base)
    before = base.read_bytes()
    code, _, err = cli("check", "--baseline", str(base), p("cpu-a2.json"), "--calibrate", "--update-baseline")
    one_line_error(code, err, "does not combine")
    code, _, err = cli("check", "--baseline", str(base), p("gpu.json"), "--calibrate")
    one_line_error(code, err, "--calibrate needs the baseline's records of this device")
    code, _, err = cli("check", "--baseline", str(base), p("cpu-threads4.json"), "--calibrate", "--allow-mismatch")
    one_line_error(code, err, "does not combine")
    code, _, err = cli("check", "--baseline", str(base), p("cpu-a.json"), "--calibrate")
    one_line_error(code, err, "the baseline's own measurements")  # zero drift by construction
    assert base.read_bytes() == before
    code, _, _ = cli("check", "--baseline", str(base), p("cpu-a2.json"), "--calibrate")
    assert code == 0
    once = base.read_bytes()
    code, _, err = cli("check", "--baseline", str(base), p("cpu-a2.json"), "--calibrate")
    one_line_error(code, err, "already an A/A session")
    assert base.read_bytes() == once
    data = json.loads(once)
    data["gate"]["synthetic-cpu"]["sessions"][0]["observations"][0]["drift_max"] = "0.1"
    base.write_text(json.dumps(data))
    code, _, err = cli("check", "--baseline", str(base), p("cpu-slow.json"))
    one_line_error(code, err, "malformed")
    base.write_bytes(before)
    code, _, err = cli("check", "--baseline", str(base), p("cpu-failed.json"), "--calibrate")
    assert code == 3 and "calibration was not saved" in err and "Traceback" not in err
    assert base.read_bytes() == before


def test_a_setting_only_the_newer_side_records_warns_instead_of_refusing(cli, tmp_path):
    data = json.loads(Path(p("cpu-a2.json")).read_text())
    for r in data["records"]:
        r["settings"]["cudnn_allow_tf32"] = True  # written by a newer hwprofile
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    code, _, err = cli("check", "--baseline", p("cpu-a.json"), str(newer))
    assert code == 0 and "recorded on one side only" in err
    for r in data["records"]:
        r["settings"]["threads"] = 4  # a real difference still refuses
    newer.write_text(json.dumps(data))
    code, _, err = cli("check", "--baseline", p("cpu-a.json"), str(newer))
    assert code == 2 and "threads" in err


def test_remeasure_narrows_the_runner_options_to_the_runner_measured_again():
    from hwprofile.gate._measure import _config_for
    from hwprofile.sweep import SweepConfig
    from hwprofile.sweep._config import check_runner_options

    base = SweepConfig(runners=("torch:cpu", "ort:cpu"),
                       options={"*": {"threads": 1, "iobinding": True}, "torch:cpu": {"channels_last": True}})
    for runner, want in (("torch:cpu", {"threads": 1, "channels_last": True}),
                         ("ort:cpu", {"threads": 1, "iobinding": True})):
        cfg = _config_for(base, ("EfficientNet-B0", None, 1.0, 1, runner, "fp32", "infer"))
        assert cfg.options == {runner: want}
        check_runner_options(cfg, [runner])  # accepted: no option for a runner outside the one-record sweep


def test_check_on_cpu_measures_with_one_thread_per_runner_and_says_so(cli, tmp_path, monkeypatch):
    """On CPU, check uses 1 thread per runner unless told otherwise, and its table says so (sweeps faked)."""
    import hwprofile.sweep._run
    from hwprofile.bounds import machine_cores

    seen = []

    def fake_sweep(config, out, resume=False, quiet=False, measure_fn=None, **kw):
        seen.append(config.options)
        profile = Profile.load(p("cpu-a2.json"))
        threads = config.options.get("*", {}).get("threads")
        profile.records = [r.replace(settings={**r.settings.to_dict(), "threads": threads})
                           for r in profile.records]
        out = Path(out or tmp_path / f"cur-{len(seen)}.json")
        profile.save(out)
        return profile, out, []


    monkeypatch.setattr(hwprofile.sweep, "run_sweep", fake_sweep)
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "base.json"
    shutil.copy(p("cpu-a.json"), base)
    code, out, err = cli("check", "--baseline", str(base), "--device", "cpu", "--allow-mismatch")
    assert seen[-1] == {"*": {"threads": 1}} and code in (0, 1), err
    assert "CPU threads per runner: ort:cpu 1 (check on CPU uses 1 thread per runner" in out
    code, out, err = cli("check", "--baseline", str(base), "--device", "cpu", "--threads", "2", "--allow-mismatch")
    assert seen[-1] == {"*": {"threads": 2}} and "CPU threads per runner: ort:cpu 2" in out
    assert "uses 1 thread per runner" not in out
    cores = machine_cores()  # threads are bounded by this machine's cores (hwprofile.bounds)
    code, out, err = cli("check", "--baseline", str(base), "--device", "cpu", "--option",
                         f"ort:cpu.threads={cores}", "--runners", "ort:cpu", "--allow-mismatch")
    assert seen[-1] == {"ort:cpu": {"threads": cores}}, err
    code, out, err = cli("check", "--baseline", str(base), "--device", "cpu", "--option",
                         f"ort:cpu.threads={cores + 1}", "--runners", "ort:cpu", "--allow-mismatch")
    assert code == 2 and "this machine's cores" in err and len(seen) == 3


def test_the_cli_gates_through_the_library_check(cli, monkeypatch):
    """``hwprofile check`` is a thin client of ``hwprofile.check``: same result, same exit code."""
    import hwprofile

    calls = []
    real = hwprofile.check
    monkeypatch.setattr(hwprofile, "check", lambda *a, **k: calls.append(a[:2]) or real(*a, **k))
    code, out, err = cli("check", "--baseline", p("cpu-a.json"), p("cpu-slow.json"))
    assert code == 1 and "REGRESSION" in out, err
    assert calls == [(p("cpu-a.json"), p("cpu-slow.json"))]
