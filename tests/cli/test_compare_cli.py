"""``hwprofile compare`` and ``hwprofile merge`` on the synthetic fixture profiles."""

import json
import shutil
from pathlib import Path

import pytest

from helpers import fixture_profile as p  # noqa: E402
from helpers import one_line_error
from hwprofile.profile import Profile


def test_compare_with_itself(cli):
    code, out, err = cli("compare", p("cpu-a.json"), p("cpu-a.json"))
    assert code == 0, err
    assert "latency ratio [CI]" in out and "Geometric means" in out
    assert out.count("1.000x") >= 8 + 1  # every record and the geometric mean


def test_compare_json_structure(cli):
    code, out, _ = cli("compare", p("cpu-a.json"), p("cpu-slow.json"), "--json")
    c = json.loads(out)["comparisons"][0]
    assert code == 0 and not c["cross_device"] and len(c["rows"]) == 8
    lat = c["summary"][-1]["latency"]
    assert 1.08 < lat["ratio"] < 1.22 and lat["ci_low"] > 1.0
    row = c["rows"][0]
    assert set(row) >= {"identity", "latency", "throughput", "memory", "base_status", "current_status"}
    assert row["latency"]["confidence"] == 0.95 and row["throughput"]["higher_is_better"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_compare_formats(cli, fmt):
    code, out, _ = cli("compare", p("cpu-a.json"), p("cpu-a2.json"), "--format", fmt)
    assert code == 0 and "RegNetX-200MF" in out


def test_cross_device_cpu_against_gpu(cli):
    code, out, err = cli("compare", p("cpu-a.json"), p("gpu.json"))
    assert code == 0, err
    assert "cross-device" in out and "ort:cpu>ort:cuda" in out
    assert out.count("Does runtime follow activations") == 2 and "δ [CI]" in out
    assert "At equal flops, across devices" in out


def test_compare_one_merged_file_with_two_devices(cli, tmp_path):
    merged = tmp_path / "merged.json"
    code, _, err = cli("merge", p("cpu-a.json"), p("gpu.json"), "-o", str(merged))
    assert code == 0, err
    code, out, err = cli("compare", str(merged), "--json")
    c = json.loads(out)["comparisons"][0]
    assert code == 0 and c["cross_device"] and {c["base_device"], c["current_device"]} == {
        "synthetic-cpu", "synthetic-gpu"}


def test_several_profiles_against_the_first(cli):
    code, out, _ = cli("compare", p("cpu-a.json"), p("cpu-a2.json"), p("cpu-slow.json"), "--json")
    assert code == 0 and len(json.loads(out)["comparisons"]) == 2


def test_mismatch_refused_unless_allowed(cli):
    code, _, err = cli("compare", p("cpu-a.json"), p("cpu-threads4.json"))
    one_line_error(code, err, "thread setting settings.threads: 2 vs 4")
    assert "--allow-mismatch" in err
    code, _, err = cli("compare", p("cpu-a.json"), p("cpu-other-ort.json"))
    one_line_error(code, err, "onnxruntime: 1.32.0 vs 1.20.0")
    code, out, err = cli("compare", p("cpu-a.json"), p("cpu-threads4.json"), "--allow-mismatch")
    assert code == 0 and "latency ratio" in out
    assert "warning: thread setting settings.threads: 2 vs 4 in 8 records" in out and "warning" not in err


@pytest.mark.parametrize("args,needle", [
    (["schema-v3.json"], "schema version 3"),
    (["corrupt.json"], "not valid JSON"),
    (["cpu-other-models.json"], "no record in common"),
    (["missing.json"], "does not exist"),
])
def test_compare_bad_input(cli, args, needle):
    code, _, err = cli("compare", p("cpu-a.json"), *[p(a) for a in args])
    one_line_error(code, err, needle)


def test_compare_needs_two_sides(cli):
    code, _, err = cli("compare", p("cpu-a.json"))
    one_line_error(code, err, "needs two sides")


def test_compare_of_a_real_profile_with_itself(cli):
    """Real measurements keep their per-process samples: the self-comparison is exactly 1."""
    real = sorted(p for p in Path(__file__).resolve().parents[2].glob("profiles/*.json")
                  if p.name != "schema.json")
    if not real:
        pytest.skip("no committed profile under profiles/ yet")
    code, out, err = cli("compare", str(real[0]), str(real[0]), "--json")
    assert code == 0, err
    rows = json.loads(out)["comparisons"][0]["rows"]
    assert rows and all(r["latency"]["ratio"] == pytest.approx(1.0) for r in rows if r["latency"])


# ------------------------------------------------------------------------------- merge

def test_merge_writes_a_multi_device_profile_and_never_overwrites(cli, tmp_path):
    out = tmp_path / "all.json"
    code, text, err = cli("merge", p("cpu-a.json"), p("gpu.json"), "-o", str(out))
    assert code == 0, err
    assert "synthetic-gpu" in text
    merged = Profile.load(out)
    assert set(merged.devices) == {"synthetic-cpu", "synthetic-gpu"} and len(merged.records) == 16
    before = out.read_bytes()
    code, _, err = cli("merge", p("cpu-a.json"), p("gpu.json"), "-o", str(out))
    one_line_error(code, err, "already exists")
    assert out.read_bytes() == before


def test_merge_conflicts(cli, tmp_path):
    code, _, err = cli("merge", p("cpu-a.json"), p("cpu-a2.json"), "-o", str(tmp_path / "x.json"))
    one_line_error(code, err, "--prefer newer")
    assert not (tmp_path / "x.json").exists()
    code, _, err = cli("merge", p("cpu-a.json"), p("cpu-a2.json"), "-o", str(tmp_path / "y.json"), "--prefer", "newer")
    assert code == 0, err
    utc = {r.measured_utc for r in Profile.load(tmp_path / "y.json").records}
    assert utc == {"2026-01-02T00:00:00+00:00"}  # cpu-a2 is the newer run
    shutil.copy(p("corrupt.json"), tmp_path / "c.json")
    code, _, err = cli("merge", p("cpu-a.json"), str(tmp_path / "c.json"), "-o", str(tmp_path / "z.json"))
    one_line_error(code, err, "not valid JSON")


def test_merge_prefer_cleaner_keeps_the_record_of_better_quality(cli, tmp_path):
    """--prefer cleaner: clean beats noisy beats disturbed, whichever input is newer; equals: the newer."""
    old, new = Profile.load(p("cpu-a.json")), Profile.load(p("cpu-a2.json"))  # cpu-a2 is the newer run
    new.records = [r.replace(quality="disturbed", quality_reasons=["other load 1.5 cores > 0.5"]) if i == 0 else
                   r.replace(quality="clean", quality_reasons=[]) for i, r in enumerate(new.records)]
    old.records = [r.replace(quality="clean", quality_reasons=[]) for r in old.records]
    old.save(tmp_path / "old.json")
    new.save(tmp_path / "new.json")
    code, text, err = cli("merge", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "-o",
                          str(tmp_path / "m.json"), "--prefer", "cleaner")
    assert code == 0, err
    assert "kept the cleaner measurement" in text
    merged = {r.key(): r for r in Profile.load(tmp_path / "m.json").records}
    first = new.records[0].key()
    assert merged[first].measured_utc == old.records[0].measured_utc and merged[first].quality == "clean"
    assert {r.measured_utc for k, r in merged.items() if k != first} == {"2026-01-02T00:00:00+00:00"}
    code, _, err = cli("merge", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "-o",
                       str(tmp_path / "n.json"), "--prefer", "newer")
    assert code == 0 and Profile.load(tmp_path / "n.json").by_key()[first].quality == "disturbed"
