"""``compare --ab SETTING``: deliberate A/B comparisons, on the committed 2-thread / 1-thread pair and fixtures.

Must show (issue 23): on a 1-thread and a 2-thread profile, exit 0, the difference named once, no duplicated
warnings, the argument order kept, a quality column; warnings printed once (stdout, not stderr too).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from helpers import fixture_profile as p  # noqa: E402
from helpers import one_line_error
from hwprofile.analysis import ab_split, summarize
from hwprofile.analysis._comparability import AB_SETTINGS, Mismatch, round3
from hwprofile.profile import Profile

ROOT = Path(__file__).resolve().parents[2]
TWO = str(ROOT / "profiles" / "cpu-intel-xeon-2c__torch-ort__fp32__infer.json")
ONE = str(ROOT / "profiles" / "cpu-intel-xeon-2c__torch-ort__fp32__infer__1thread-3proc.json")


def test_ab_threads_on_the_committed_pair(cli):
    code, out, err = cli("compare", TWO, ONE, "--ab", "threads")
    assert code == 0, err
    assert err == ""  # printed once: on stdout, as notes of the table
    lines = out.splitlines()
    title = " ".join(lines[:3])
    assert title.index(TWO) < title.index(ONE)  # A first, as given
    assert sum("threads 2 vs 1" in line for line in lines) == 1  # the difference, named once
    assert not [line for line in lines if line.startswith("warning:") and "threads" in line]
    warnings = [line for line in lines if line.startswith("warning:")]
    assert warnings and all(n == 1 for n in Counter(warnings).values())
    fields = [w.split(":")[1].split()[-1] for w in warnings]
    assert len(fields) == len(set(fields))  # one line per field
    assert not [w for w in warnings if "." in w and any(len(x) > 6 for x in w.replace(",", " ").split()
                                                        if x.replace(".", "").isdigit())]  # rounded
    header = next(line for line in lines if line.startswith("model "))
    assert "quality" in header and "A ms" in header and "B ms" in header
    assert "clean / noisy" in out


def test_without_ab_the_same_pair_is_refused_with_a_pointer_to_it(cli):
    code, _, err = cli("compare", TWO, ONE)
    one_line_error(code, err, "thread setting settings.threads: 2 vs 1")
    assert "--ab SETTING" in err


def test_ab_json_names_the_difference_apart_from_the_warnings(cli):
    code, out, err = cli("compare", TWO, ONE, "--ab", "threads", "--json")
    assert code == 0 and err == ""
    c = json.loads(out)["comparisons"][0]
    assert c["ab"] == "threads" and c["base"] == TWO and c["current"] == ONE
    assert any("settings.threads: 2 vs 1" in d for d in c["deliberate"])
    assert not any("threads" in w for w in c["warnings"])
    assert all(r["base_quality"] in ("clean", "noisy", "disturbed") for r in c["rows"])


def test_ab_leaves_other_refusals_in_place(cli):
    """A/B on threads does not excuse another result setting: a different onnxruntime still refuses."""
    code, _, err = cli("compare", p("cpu-a.json"), p("cpu-other-ort.json"), "--ab", "threads")
    one_line_error(code, err, "onnxruntime: 1.32.0 vs 1.20.0")
    code, out, err = cli("compare", p("cpu-a.json"), p("cpu-other-ort.json"), "--ab", "version")
    assert code == 0, err
    assert "A/B difference (version, allowed): fingerprint.versions.onnxruntime 1.32.0 vs 1.20.0" in out


def test_ab_runner_joins_two_runners_of_one_profile(cli):
    code, out, err = cli("compare", TWO, TWO, "--ab", "runner=torch:cpu,ort:cpu")
    assert code == 0, err
    assert "torch:cpu>ort:cpu" in out and "runner torch:cpu vs ort:cpu" in out
    assert "settings only one runner records" in out
    code, _, err = cli("compare", TWO, TWO, "--ab", "runner")
    one_line_error(code, err, "two runners")
    code, _, err = cli("compare", TWO, TWO, "--ab", "runner=torch:cpu,trt")
    one_line_error(code, err, "no record with runner trt")


def test_ab_precision_joins_fp32_with_fp16(cli, tmp_path):
    for name, precision, dtype in (("full", "fp32", "float32"), ("half", "fp16", "float16")):
        prof = Profile.load(p("cpu-a.json"))
        prof.records = [r.replace(precision=precision, settings={**r.settings.to_dict(), "input_dtype": dtype})
                        for r in prof.records]
        prof.save(tmp_path / f"{name}.json")
    full, half = str(tmp_path / "full.json"), str(tmp_path / "half.json")
    code, _, err = cli("compare", full, half)
    one_line_error(code, err, "no record in common")
    code, out, err = cli("compare", full, half, "--ab", "precision")
    assert code == 0, err
    assert "fp32>fp16" in cli("compare", full, half, "--ab", "precision", "--wide")[1]
    assert "A/B difference (precision, allowed): precision fp32 vs fp16; input_dtype float32 vs float16" in out


@pytest.mark.parametrize("value,needle", [("bogus", "expected one of threads"), ("threads=1,2", "only runner and "),
                                          ("runner=torch:cpu", "SETTING=A,B")])
def test_bad_ab_values_are_one_line(cli, value, needle):
    code, _, err = cli("compare", TWO, ONE, "--ab", value)
    one_line_error(code, err, needle)


def test_csv_sends_the_warnings_to_stderr_once(cli):
    code, out, err = cli("compare", TWO, ONE, "--ab", "threads", "--format", "csv", "--table", "ratios")
    assert code == 0 and not out.startswith("#") and "warning" not in out
    warnings = err.strip().splitlines()
    assert warnings and len(warnings) == len(set(warnings))


def test_summaries_group_by_field_and_round():
    ms = [Mismatch("setting", "settings.foreign_cpu_cores", [0.0334567], [0.121, 0.02], "warn", 1),
          Mismatch("setting", "settings.foreign_cpu_cores", [0.016], [0.05], "warn", 1),
          Mismatch("fingerprint", "fingerprint.peaks.copy.gb_per_s", 18.097825039092, 16.928744348192403, "warn")]
    s = summarize(ms)
    assert [m.text() for m in s] == [
        "setting settings.foreign_cpu_cores: 0.016 to 0.0335 vs 0.02 to 0.121 in 2 records",
        "fingerprint fingerprint.peaks.copy.gb_per_s: 18.1 vs 16.9"]
    assert [round3(x) for x in (224441880565.8, 0.000123456, 12345)] == ["224G", "0.000123", "12.3k"]


def test_ab_split_takes_the_declared_kind_and_runner_specific_fields():
    thread = Mismatch("thread setting", "settings.threads", 2, 1, "refuse", 3, "thread setting")
    load = Mismatch("setting", "settings.foreign_cpu_cores", [0.1], [0.2], "warn", 3)
    own = Mismatch("setting", "settings.graph_optimization_level", None, "ALL", "warn", 3, "setting", shared=False)
    assert ab_split([thread, load, own], AB_SETTINGS["threads"]) == ([thread], [load, own])
    assert ab_split([thread, load, own], AB_SETTINGS["runner"]) == ([own], [thread, load])
