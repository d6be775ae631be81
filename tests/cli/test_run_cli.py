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
                            "--seconds-per-config", "0.3", "--out", str(out), "--quiet", "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert len(data["records"]) == 6
    statuses = {r["runner"]: r["status"] for r in data["records"]}
    assert statuses == {"torch:cpu": "ok", "ort:cpu": "ok"}, [r["reason"] for r in data["records"]]
    assert all(r["median_ms"] > 0 for r in data["records"])
    assert len(data["follows"]) == 2
