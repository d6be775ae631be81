import json

import pytest

from hwprofile.profile import Profile
from hwprofile.profile._profile import SCHEMA_VERSION
from synthetic import synthetic_profile


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "p.json"
    synthetic_profile().save(path)
    return path


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_show_prints_the_three_tables(cli, saved, fmt):
    code, out, err = cli("show", str(saved), "--format", fmt)
    assert code == 0, err
    assert "Does runtime follow activations" in out or "r_acts" in out
    assert "EfficientNet-B0 dWr x4" in out


def test_show_json(cli, saved):
    code, out, _ = cli("show", str(saved), "--json")
    data = json.loads(out)
    assert code == 0 and {"records", "follows", "contrast", "growth"} <= set(data)
    assert all(row["verdict"] == "acts" and row["delta"]["ci"][0] > 0 and row["beta_acts"]["ci"][0] > 0
               for row in data["follows"])
    assert data["contrast"] and all(c["reference"] == "w" for c in data["contrast"])


def test_predict_and_select_cli(cli, saved):
    code, out, err = cli("predict", str(saved), "EfficientNet-B0", "--strategy", "dWr", "--scale", "3", "--batch", "8",
                         "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 1 and rows[0]["predicted_ms"] > 0 and rows[0]["loo_error_pct"] is not None
    code, out, err = cli("select", str(saved), "--model", "EfficientNet-B0", "--max-latency-ms", "5", "--json")
    assert code == 0, err
    assert all(r["predicted_ms"] <= 5 for r in json.loads(out))


@pytest.mark.slow
def test_plot_writes_pngs(cli, saved, tmp_path):
    code, out, err = cli("plot", str(saved), "--out", str(tmp_path / "plots"))
    assert code == 0, err
    paths = out.split()
    assert len(paths) == 2 and all(p.endswith(".png") for p in paths)
    assert (tmp_path / "plots").joinpath(paths[0].rsplit("/", 1)[-1]).stat().st_size > 10_000


def test_profile_roundtrip(saved):
    prof = Profile.load(saved)
    again = Profile.from_dict(json.loads(json.dumps(prof.to_dict())))
    assert [r.key() for r in again.records] == [r.key() for r in prof.records]


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    (json.dumps({"schema": "hwprofile.profile", "schema_version": SCHEMA_VERSION + 1, "devices": {}, "sweeps": [],
                 "records": []}), "schema version"),
    (json.dumps({"hello": 1}), "not an hwprofile profile"),
    (json.dumps({"schema": "hwprofile.profile", "schema_version": SCHEMA_VERSION, "devices": {}, "sweeps": [],
                 "records": [{"model": "x"}]}), "lacks fields"),
])
def test_bad_profiles_are_one_line_exit_2(cli, tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    before = path.read_text()
    code, _, err = cli("show", str(path))
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert path.read_text() == before


def test_missing_profile(cli, tmp_path):
    code, _, err = cli("show", str(tmp_path / "nope.json"))
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize("argv,needle", [
    (["predict", "{p}", "EfficientNet-B0", "--batch", "64"], "no usable records"),
    (["predict", "{p}", "EfficientNet-B0", "--scale", "2"], "needs --strategy"),
    (["select", "{p}", "--model", "EfficientNet-B0", "--max-latency-ms", "-1"], "must be > 0"),
    (["select", "{p}", "--model", "NoSuchNet", "--max-latency-ms", "5"], "unknown model"),
])
def test_predict_select_bad_input(cli, saved, argv, needle):
    code, _, err = cli(*[a.format(p=saved) for a in argv])
    assert code == 2 and needle in err and "Traceback" not in err


def test_records_show_the_load_other_processes_put_on_the_machine(cli, tmp_path):
    prof = synthetic_profile(batches=(1,))
    from hwprofile.profile import Record

    first = prof.records[0]
    prof.upsert(Record(**{**first.to_dict(), "settings": {"foreign_cpu_cores": [0.1, 1.2]}}))
    path = tmp_path / "p.json"
    prof.save(path)
    code, out, _ = cli("show", str(path), "--json")
    rows = json.loads(out)["records"]
    assert code == 0
    assert [r["foreign_cpu_cores"] for r in rows if r["foreign_cpu_cores"] is not None] == [1.2]
    code, out, _ = cli("show", str(path))
    assert "1.2 cores" in out


@pytest.mark.parametrize("name", ["cpu-intel-xeon-2c__torch-ort__fp32__infer.json",
                                  "cpu-intel-xeon-2c__torch-ort__fp32__infer__1thread-3proc.json",
                                  "cpu-intel-xeon-2c__torch__fp32__train.json"])
def test_show_answers_every_row_of_the_committed_profiles(cli, name):
    """Must show: per row β_flops, β_acts and δ with intervals, the share of time with activations with its
    interval, the verdict and, for an undecided row, what would decide it; and the equal-flops contrast."""
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "profiles" / name
    code, out, err = cli("show", str(path))
    assert code == 0, err
    rows = json.loads(cli("show", str(path), "--json")[1])["follows"]
    ci = r"-?\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]"
    lines = out.splitlines()
    for row in rows:
        table = [ln for ln in lines if re.match(rf"{re.escape(row['runner'])} +{row['batch']} ", ln)
                 and re.search(rf"{ci} +{ci} +{ci} ", ln)]  # (a profile holds one mode: 100 columns leave it out)
        assert len(table) == 1 and table[0].rstrip().endswith(row["verdict"])
        head = f"{row['runner']} b{row['batch']} {row['mode']}: {row['verdict']}; "
        i = next(k for k, ln in enumerate(lines) if ln.startswith(head))
        follow = []
        for ln in lines[i + 1:]:
            if not ln.startswith("  "):
                break
            follow.append(ln)
        reading = " ".join([lines[i], *(ln.strip() for ln in follow)])  # notes wrap to the width
        assert re.search(r"\d+% \[\d+, \d+\] of time scales with activations; runtime ∝ flops\^", reading)
        assert any(ln.startswith("  to decide: ") for ln in follow) == (row["verdict"] == "not distinguishable")
    contrast = lines[lines.index("At equal flops: latency relative to w (the paper's point)"):]
    assert sum(bool(re.search(r" r/w +\d+\.\d\dx \[\d+\.\d\d, \d+\.\d\d\] +1\.06x +2\.00x", ln)) for ln in contrast) \
        == len({(r["runner"], r["batch"]) for r in rows})
