import json

import pytest


@pytest.mark.parametrize("argv,code,needle", [
    (["run", "--device", "cuda:0"], 3, "cuda:0"),
    (["run", "--device", "tpu"], 2, "tpu"),
    (["run", "--runners", "foo:bar"], 2, "foo:bar"),
    (["run", "--batch-sizes", "0"], 2, "batch-sizes"),
    (["run", "--batch-sizes", "1.5"], 2, "batch-sizes"),
    (["run", "--scales", "1,-2"], 2, "finite number > 0"),
    (["run", "--strategies", "d,"], 2, "comma-separated"),
    (["run", "--mode", "train", "--runners", "ort:cpu"], 2, "torch runners"),
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
    (["run", "--runners", "ort:cpu", "--option", "threads=abc"], 2, "threads='abc': expected an integer >= 1"),
    (["run", "--runners", "ort:cpu", "--option", "threads=0"], 2, "expected an integer >= 1"),
    (["run", "--runners", "torch:cpu", "--option", "compile=maybe"], 2, "expected true or false"),
    (["run", "--threads", "2", "--option", "threads=4"], 2, "contradicts"),
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
                            "--threads", "1", "--option", "torch:cpu.channels_last=true")
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
