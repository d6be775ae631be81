import json

import pytest

from hwprofile import env

NO_GPU = pytest.mark.skipif(env.gpu_count() > 0, reason="on a GPU machine this would start a GPU sweep")


@pytest.mark.parametrize("argv,code,needle", [
    pytest.param(["run", "--device", "cuda:0"], 3, "cuda:0", marks=NO_GPU),
    (["run", "--device", "tpu"], 2, "tpu"),
    (["run", "--runners", "foo:bar"], 2, "foo:bar"),
    (["run", "--batch-sizes", "0"], 2, "batch-sizes"),
    (["run", "--batch-sizes", "1.5"], 2, "batch-sizes"),
    (["run", "--scales", "1,-2"], 2, "finite number > 0"),
    (["run", "--strategies", "d,"], 2, "comma-separated"),
    (["run", "--mode", "train", "--runners", "ort:cpu"], 2, "needs runners that support it"),
    (["run", "--memory-limit", "-5"], 2, "--memory-limit"),
    (["run", "--models", "missing.onnx"], 2, "does not exist"),
    (["run", "--budget", "-5"], 2, "--budget"),
    (["run", "--repeats", "0"], 2, "--repeats"),
    (["run", "--out", "a.json", "--resume", "b.json"], 2, "different files"),
    (["run", "--threads", "0"], 2, "--threads"),
    (["run", "--option", "threads"], 2, "[RUNNER.]KEY=VALUE"),
    (["run", "--option", "nope:x.threads=1"], 2, "nope:x"),
    (["run", "--runners", "torch:cpu", "--option", "iobinding=1"], 2, "no runner of this sweep takes the option"),
    (["run", "--runners", "torch:cpu", "--option", "ort:cpu.threads=1"], 2, "not in this sweep"),
    (["run", "--runners", "torch:cpu", "--option", "torch:cpu.bogus=1"], 2, "unknown option(s) bogus"),
    (["run", "--runners", "ort:cpu", "--option", "threads=abc"], 2, "threads 'abc': expected an integer from 1 to"),
    (["run", "--runners", "ort:cpu", "--option", "threads=0"], 2, "threads 0: expected an integer from 1 to"),
    (["run", "--threads", "100000"], 2, "this machine's cores"),
    (["run", "--layers", "0"], 2, "--layers 0: expected an integer from 4 to 1000"),
    (["run", "--runners", "torch:cpu", "--option", "compile=maybe"], 2, "expected true or false"),
    (["run", "--threads", "2", "--option", "threads=4"], 2, "contradicts"),
    (["run", "--remeasure", "disturbed"], 2, "--resume FILE"),
    (["run", "--retries", "-1"], 2, "--retries"),
    (["run", "--remeasure", "all"], 2, "invalid choice"),
])
def test_bad_run_options(cli, tmp_path, monkeypatch, argv, code, needle):
    monkeypatch.chdir(tmp_path)
    got, out, err = cli(*argv, "--quiet")
    assert got == code, err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_existing_out_is_refused_and_kept(cli, tmp_path):
    out = tmp_path / "p.json"
    out.write_text("keep me")
    code, _, err = cli("run", "--device", "cpu", "--out", str(out), "--quiet")
    assert code == 2 and "already exists" in err and out.read_text() == "keep me"


def test_resume_of_corrupt_file_is_refused_and_kept(cli, tmp_path):
    out = tmp_path / "p.json"
    out.write_text("{broken")
    code, _, err = cli("run", "--device", "cpu", "--resume", str(out), "--quiet")
    assert code == 2 and "not valid JSON" in err and out.read_text() == "{broken"


@pytest.mark.slow
def test_real_small_sweep_on_cpu_runners(cli, tmp_path, monkeypatch):
    """End to end: export, measure on torch:cpu and ort:cpu, save, print tables."""
    monkeypatch.setenv("HWPROFILE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "p.json"
    code, stdout, err = cli("run", "--device", "cpu", "--runners", "torch:cpu,ort:cpu", "--models", "RegNetX-200MF",
                            "--strategies", "w,d", "--scales", "1,2", "--batch-sizes", "1",
                            "--seconds-per-config", "0.3", "--out", str(out), "--quiet", "--json",
                            "--threads", "1", "--option", "torch:cpu.channels_last=true", "--retries", "0",
                            "--no-peaks")  # peaks: test_show_prints_verdicts_and_every_records_share_of_the_peaks
    assert code == 0, err
    data = json.loads(stdout)
    assert len(data["records"]) == 6
    statuses = {r["runner"]: r["status"] for r in data["records"]}
    assert statuses == {"torch:cpu": "ok", "ort:cpu": "ok"}, [r["reason"] for r in data["records"]]
    assert all(r["median_ms"] > 0 for r in data["records"])
    assert len(data["follows"]) == 2
    from hwprofile.profile import Profile

    settings = {r.runner: r.settings.to_dict() for r in Profile.load(out).records}
    assert settings["torch:cpu"]["threads"] == 1 and settings["ort:cpu"]["threads"] == 1
    assert settings["torch:cpu"]["channels_last"] is True
    assert Profile.load(out).sweeps[0]["config"]["options"] == {"*": {"threads": 1},
                                                                "torch:cpu": {"channels_last": True}}


MUST_SHOW = ["run", "--plan", "--device", "cuda:0", "--runners", "torch:cuda,ort:cuda,ort:tensorrt,trt",
             "--models", "EfficientNet-B0", "--strategies", "dWr", "--scales", "1,2", "--batch-sizes", "1,8", "--json"]


def test_plan_for_a_gpu_needs_no_gpu(cli, tmp_path, monkeypatch):
    """run --plan: one item per record with the input its runner declares; exports and engine builds, each
    once; a positive estimate; no device, no measurement, no file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(env, "gpu_names", lambda: [])  # as on a CPU-only machine, also where a GPU is
    code, out, err = cli(*MUST_SHOW)
    assert code == 0, err
    plan = json.loads(out)
    items = plan["items"]
    assert len(items) == 16 and plan["estimated_s"] > 0 and plan["device_present"] is False
    assert {i["runner"]: i["input"] for i in items} == {"torch:cuda": "module", "ort:cuda": "onnx",
                                                        "ort:tensorrt": "onnx", "trt": "engine"}
    for key in ("model", "strategy", "scale", "batch", "runner", "precision", "mode", "input"):
        assert all(key in i for i in items)
    assert {(i["strategy"], i["scale"], i["batch"]) for i in items} == {
        (None, 1.0, 1), (None, 1.0, 8), ("dWr", 2.0, 1), ("dWr", 2.0, 8)}
    arts = {(a["kind"], a["model"]): a for a in plan["artifacts"]}
    assert set(arts) == {(k, m) for k in ("onnx", "engine") for m in ("EfficientNet-B0", "EfficientNet-B0 dWr x2")}
    engine = arts[("engine", "EfficientNet-B0")]
    assert engine["batches"] == [1, 8] and engine["device"] == "cuda:0" and engine["action"] == "build"
    by_id = {a["id"]: a for a in plan["artifacts"]}
    assert all(by_id[i["artifact"]]["kind"] == i["input"] for i in items if i["input"] != "module")
    assert abs(sum(i["estimated_s"] for i in items) + sum(a["estimated_s"] for a in plan["artifacts"])
               - plan["estimated_s"]) < 4 * 8.0 + 1  # plus one baseline process per runner
    assert not list(tmp_path.iterdir())


def test_plan_table_and_defaults(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(env, "gpu_names", lambda: [])
    code, out, err = cli("run", "--plan", "--device", "cuda:0", "--models", "RegNetX-200MF", "--scales", "1")
    assert code == 0, err
    assert "not present here" in out and "estimated wall time" in out and "engine" in out
    assert "planned for every cuda runner" in out  # none given and the device is absent: all of its type
    code, out, err = cli("run", "--plan", "--device", "cpu", "--runners", "torch:cpu", "--mode", "train",
                         "--models", "RegNetX-200MF", "--scales", "1", "--json")
    plan = json.loads(out)
    assert code == 0 and {i["input"] for i in plan["items"]} == {"module"} and plan["artifacts"] == []
    assert len(plan["items"]) == 2 and {i["mode"] for i in plan["items"]} == {"train"}
    code, _, err = cli("run", "--plan", "--device", "cpu", "--runners", "trt")
    assert code == 2 and "trt run on cuda devices, not cpu" in err


def test_plan_says_per_row_what_the_design_can_decide(cli, tmp_path, monkeypatch):
    """run --plan: per runner and batch, the joint fit's SE(δ)/σ for the models planned, before measuring; the
    default design's is half the previous default's; models all scaled alike can hardly be told apart."""
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("run", "--plan", "--device", "cpu", "--runners", "torch:cpu,ort:cpu", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert [(r["runner"], r["batch"]) for r in plan["design"]] == [
        ("torch:cpu", 1), ("torch:cpu", 8), ("ort:cpu", 1), ("ort:cpu", 8)]
    assert all(r["models"] == 7 and r["df"] == 4 and 1.5 < r["se_delta_per_sigma"] < 1.7 for r in plan["design"])
    assert all(0.5 < r["decidable_delta"] < 0.8 for r in plan["design"]) and plan["plan_sigma"] == 0.1
    code, out, _ = cli("run", "--plan", "--device", "cpu", "--runners", "ort:cpu", "--strategies",
                       "d,w,r,dw,dwr,dWr", "--scales", "1,4", "--batch-sizes", "1", "--json")
    (old,) = json.loads(out)["design"]
    assert old["se_delta_per_sigma"] > 2 * plan["design"][0]["se_delta_per_sigma"]
    code, out, _ = cli("run", "--plan", "--device", "cpu", "--runners", "ort:cpu", "--strategies", "w",
                       "--scales", "1,2,4,8,16", "--batch-sizes", "1")
    assert code == 0 and "Can it tell activations from flops?" in out and "SE(δ)/σ" in out
    row = next(line for line in out.splitlines() if line.startswith("ort:cpu ")).split()
    assert row[2:4] == ["5", "2"] and float(row[4]) > 50 and float(row[-1]) > 10  # all scaled by w: hopeless


def _cores() -> int:
    import os

    return max(2, len(os.sched_getaffinity(0)))


@pytest.mark.slow  # ~30 s on a 2-core VM (the fork server starts under load)
def test_a_sweep_while_busy_processes_hold_every_core(cli, tmp_path, monkeypatch):
    """Must show: every ok record measured while busy loops hold every core is disturbed (or noisy), the fits
    leave the disturbed ones out and list them as excluded (noisy ones count, weighted by their spread), and
    the run's last line says so."""
    import subprocess
    import sys
    import time

    from hwprofile.profile import Profile

    monkeypatch.setenv("HWPROFILE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "busy.json"
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(_cores())]
    try:
        time.sleep(0.5)
        code, stdout, err = cli("run", "--device", "cpu", "--runners", "torch:cpu", "--models", "RegNetX-200MF",
                                "--strategies", "w", "--scales", "1,2", "--batch-sizes", "1", "--threads", "1",
                                "--seconds-per-config", "0.3", "--retries", "1", "--retry-backoff", "0.2",
                                "--no-peaks", "--out", str(out), "--quiet", "--json")
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert code == 0, err
    records = [r for r in Profile.load(out).records if r.ok]
    assert len(records) == 2
    assert all(r.quality in ("disturbed", "noisy") and r.quality_reasons for r in records), \
        [(r.quality, r.settings.get("foreign_cpu_cores")) for r in records]
    # retried once
    assert any(r.quality == "disturbed" and len(r.settings.to_dict()["quality_attempts"]) == 1 for r in records)
    (row,) = json.loads(stdout)["follows"]
    assert row["verdict"] == "not distinguishable" and "too few usable records" in row["basis"]
    disturbed = sorted(r.label for r in records if r.quality == "disturbed")
    assert sorted(e["model"] for e in row["excluded"]) == disturbed and row["n"] == 2 - len(disturbed)
    assert all(e["why"].startswith("disturbed: ") for e in row["excluded"])
    last = err.strip().splitlines()[-1]
    assert last.startswith("quality: 2 of 2 ok records are not clean") and "the fits leave disturbed ones out" in last
    assert f"--resume {out} --remeasure" in last


@pytest.mark.slow
def test_show_prints_verdicts_and_every_records_share_of_the_peaks(cli, tmp_path, monkeypatch):
    """Must show: `hwprofile show` of a profile measured on this machine prints the elasticities and δ with their
    intervals and the verdict, and each record's share of peak compute and bandwidth."""
    import re

    from hwprofile.profile import Profile

    monkeypatch.setenv("HWPROFILE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "here.json"
    code, _, err = cli("run", "--device", "cpu", "--runners", "torch:cpu", "--models", "RegNetX-200MF",
                       "--strategies", "w,d,r,dw", "--scales", "1,2", "--batch-sizes", "1", "--threads", "1",
                       "--seconds-per-config", "0.2", "--retries", "0", "--out", str(out), "--quiet")
    assert code == 0, err
    assert err.strip().splitlines()[-2].startswith("roofline")
    prof = Profile.load(out)
    peaks = prof.device(prof.records[0].device_id).peaks
    assert peaks["matmul_fp32"]["flops_per_s"] > 0 and peaks["copy"]["gb_per_s"] > 0
    code, table, err = cli("show", str(out), "--wide")  # every column, however wide
    assert code == 0, err
    assert "% compute" in table and "% bw" in table and "δ [CI]" in table
    lines = {ln.split("  ")[0]: ln for ln in table.splitlines() if ln.startswith("RegNetX-200MF")}
    assert len(lines) == 5 and all(re.search(r"torch:cpu .* \d+\.\d% +\d+\.\d+% ", ln) for ln in lines.values())
    rows = json.loads(cli("show", str(out), "--json")[1])
    assert all(r["compute_share"] > 0 and r["bandwidth_share"] > 0 for r in rows["records"])
    (row,) = rows["follows"]
    ci = r"-?\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]"
    verdict_re = rf"torch:cpu .*{ci} +{ci} +{ci} .*(acts|flops|both|not distinguishable|neither)$"
    if row["n"] >= 5:  # this VM is shared: records may have been disturbed
        assert re.search(verdict_re, table, re.M)
    else:
        assert "too few usable records" in table
    # the same real measurements, as if the machine had been quiet: the verdict and its interval are printed
    prof.records = [r.replace(quality="clean", quality_reasons=[]) for r in prof.records]
    prof.save(tmp_path / "quiet.json")
    code, table, err = cli("show", str(tmp_path / "quiet.json"))
    assert code == 0 and re.search(verdict_re, table, re.M), table


def test_resume_remeasure_disturbed_uses_the_files_own_sweep_options(cli, tmp_path, monkeypatch):
    """The command the run's last line prints works as printed (measurement faked)."""
    import hwprofile.sweep._local
    import hwprofile.sweep._run
    from hwprofile.profile import Profile
    from sweep_fakes import fake_measure

    load = {"cores": 1.5}

    def measure(*a, **kw):
        out = fake_measure(*a, **kw)
        out["settings"] = {"foreign_cpu_cores": [load["cores"]]}
        return out

    monkeypatch.setattr(hwprofile.sweep._local, "measure", measure)
    monkeypatch.setattr(hwprofile.sweep._run, "measure_peaks", lambda device: {"error": "not measured in tests"})
    out = tmp_path / "p.json"
    code, _, err = cli("run", "--device", "cpu", "--runners", "torch:cpu", "--strategies", "w", "--scales", "1,2",
                       "--batch-sizes", "1", "--mode", "train", "--retries", "0", "--out", str(out), "--quiet")
    assert code == 0, err
    last = err.strip().splitlines()[-1]
    assert "2 of 2 ok records are not clean (2 disturbed" in last
    command = last.split("with hwprofile ", 1)[1].split()
    load["cores"] = 0.0
    code, _, err = cli(*command, "--quiet")
    assert code == 0, err
    assert err.strip().splitlines()[-1] == "quality: all 2 ok records are clean"
    assert {(r.mode, r.quality) for r in Profile.load(out).records} == {("train", "clean")}
