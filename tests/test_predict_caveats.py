"""predict and select say beside the number what may make it wrong (issue 23): outside the measured range of
flops and acts, across model families, a fit whose leave-one-out error is above the stated limit."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from hwprofile.analysis import LOO_LIMIT_PCT, model_family, predict, select
from hwprofile.analysis._follows import groups
from hwprofile.analysis._predict import MeasuredRange, candidates, caveats, record_family
from hwprofile.profile import Profile
from synthetic import synthetic_profile

ROOT = Path(__file__).resolve().parents[1]
INFER = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer.json"


def _kinds(row: dict) -> set[str]:
    return {c["kind"] for c in row["caveats"]}


# ------------------------------------------------------------------------------------------------ the rules

def test_families_of_zoo_models_onnx_files_and_imported_rows():
    assert model_family("EfficientNet-B0") == "effnet" and model_family("RegNetY-4.0GF") == "regnety"
    assert model_family("ResNeXt-50") == "resnext"
    assert model_family("models/my.onnx") == "onnx:my.onnx" and model_family("my.onnx", "onnx") == "onnx:my.onnx"
    assert model_family("regnety_040") == "regnety"  # timm's name of a zoo model is that zoo model
    assert model_family("no-such-model-anywhere") == "no-such-model-anywhere"
    rec = synthetic_profile(batches=(1,)).records[0]
    assert record_family(rec) == "effnet"


def test_a_prediction_inside_the_range_of_its_family_with_a_good_fit_has_no_caveat():
    measured = MeasuredRange((1e8, 1e9), (1e6, 1e7), ("effnet",), ("EfficientNet-B0",))
    assert caveats({"flops": 5e8, "acts": 5e6}, measured, 3.0, family="effnet") == ()


def test_outside_the_range_names_the_count_and_the_factor():
    measured = MeasuredRange((1e8, 1e9), (1e6, 1e7), ("effnet",), ("EfficientNet-B0",))
    (c,) = caveats({"flops": 4.7e9, "acts": 5e6}, measured, 3.0, family="effnet")
    assert c.kind == "range" and c.short == "flops 4.70x out"
    assert "flops 4.70G is 4.70x above the largest measured" in c.text and "flops 100M-1.00G" in c.text
    (c,) = caveats({"flops": 5e8, "acts": 5e5}, measured, 3.0)
    assert c.short == "acts 2.00x out" and "below the smallest" in c.text


def test_another_family_and_an_unreliable_fit_are_flagged():
    measured = MeasuredRange((1e8, 1e9), (1e6, 1e7), ("effnet",), ("EfficientNet-B0",))
    found = caveats({"flops": 5e8, "acts": 5e6}, measured, LOO_LIMIT_PCT + 40, family="regnety",
                    label="RegNetY-4.0GF dWr x2")
    assert [c.kind for c in found] == ["family", "loo"]
    assert "EfficientNet only" in found[0].text and "RegNetY-4.0GF dWr x2 is RegNetY" in found[0].text
    assert found[1].short == f"LOO {LOO_LIMIT_PCT + 40:.0f}%" and f"{LOO_LIMIT_PCT:g}% limit" in found[1].text
    assert caveats({"flops": 5e8, "acts": 5e6}, measured, LOO_LIMIT_PCT, family="effnet") == ()  # at the limit
    (unknown,) = caveats({"flops": 5e8, "acts": 5e6}, measured, None)
    assert unknown.kind == "loo" and unknown.short == "LOO unknown"


def test_a_fit_above_the_limit_is_said_beside_every_prediction():
    """Latencies scattered by 2.5x around the truth: the fit misses the measured models by far more than the limit,
    and the prediction says so (it is still given)."""
    base = synthetic_profile(noise=0.0, batches=(1,))
    recs = [r.replace(latency={"median_ms": r.median_ms * f, "repeats": 1, "timing_method": "synthetic"})
            for r, f in zip(base.records, itertools.cycle((2.5, 0.4, 1.0)))]
    counts = candidates("EfficientNet-B0", ["dWr"], [3.0])[0]
    (p,) = predict(Profile(devices=base.devices, records=recs), counts, family="effnet")
    assert p.loo_error_pct > LOO_LIMIT_PCT and p.latency_ms > 0
    assert [c.kind for c in p.caveats] == ["loo"] and p.caveats[0].short == f"LOO {p.loo_error_pct:.0f}%"


# ------------------------------------------------------------------------------------------------ must show

def test_predict_regnety_from_the_committed_profile_warns_across_families(cli, monkeypatch):
    """Must show: the committed profile holds EfficientNet-B0 and its scalings only."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = cli("predict", INFER, "RegNetY-4.0GF", "--strategy", "dWr", "--scale", "2")
    assert code == 0, err
    text = " ".join(out.split())
    assert "warning: across families: the fit measured EfficientNet only" in text
    assert "RegNetY-4.0GF dWr x2 is RegNetY" in text and "outside the measured range" in text
    code, js, _ = cli("predict", INFER, "RegNetY-4.0GF", "--strategy", "dWr", "--scale", "2", "--json")
    rows = json.loads(js)
    assert out.split("\n\n")[1].count("other family") == len(rows)  # beside every number
    assert rows and all({"family", "range"} <= _kinds(r) and r["extrapolated"] for r in rows)
    assert all(r["loo_error_pct"] is not None for r in rows)


def test_predict_of_the_measured_family_inside_the_range_has_no_family_or_range_caveat(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = cli("predict", INFER, "EfficientNet-B0", "--strategy", "dWr", "--scale", "2", "--json")
    assert code == 0 and all(not (_kinds(r) & {"family", "range"}) for r in json.loads(out))


def test_select_never_lists_a_candidate_outside_the_measured_range_without_saying_so(cli, monkeypatch):
    """Must show: each row outside its group's measured flops/acts carries the range caveat (checked against the
    range computed here from the profile's usable records), and per runner and batch no row with a caveat comes
    before one without."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    profile = Profile.load(ROOT / INFER)
    span = {(k[1], k[2]): (min(r.flops for r in v), max(r.flops for r in v), min(r.acts for r in v),
                           max(r.acts for r in v)) for k, v in groups(profile.records).items()}
    code, out, err = cli("select", INFER, "--model", "EfficientNet-B0", "--max-latency-ms", "100", "--json")
    assert code == 0, err
    rows = json.loads(out)
    outside = 0
    for r in rows:
        f0, f1, a0, a1 = span[(r["runner"], r["batch"])]
        if not (f0 <= r["flops"] <= f1 and a0 <= r["acts"] <= a1):
            outside += 1
            assert "range" in _kinds(r) and r["extrapolated"] and "out" in r["caveat"], r
        else:
            assert "range" not in _kinds(r), r
    assert outside, "the committed profile's budget of 100 ms reaches beyond its measured range"
    for key in span:
        flagged = [bool(r["caveats"]) for r in rows if (r["runner"], r["batch"]) == key]
        assert flagged == sorted(flagged), key  # no caveat-free row after a flagged one; never flagged first
    code, out, _ = cli("select", INFER, "--model", "EfficientNet-B0", "--max-latency-ms", "100", "--top", "60")
    lines = out.splitlines()
    shown: dict = {}
    for r in rows:  # the rows the table shows: the first 60 per runner and batch (--top)
        shown.setdefault((r["runner"], r["batch"]), []).append(r)
    for r in (r for group in shown.values() for r in group[:60] if r["caveats"]):
        cells = [r["runner"], str(r["batch"]), r["strategy"] or "-", f"{r['scale']:g}"]
        (line,) = [line for line in lines if line.split()[:4] == cells]
        assert r["caveat"] in line, line
    assert "warning:" in out and "outside the measured range (flops" in " ".join(out.split())


def test_select_trusted_only_drops_every_candidate_with_a_caveat(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = cli("select", INFER, "--model", "EfficientNet-B0", "--max-latency-ms", "100", "--trusted-only",
                       "--json")
    rows = json.loads(out)
    assert code == 0 and rows and not any(r["caveats"] for r in rows)


def test_select_puts_caveat_free_candidates_first_then_largest_flops():
    prof = synthetic_profile(noise=0.0)
    rows = select(prof, "EfficientNet-B0", 1e9, runner="ort:cpu", batch=1)
    flagged = [bool(r["caveats"]) for r in rows]
    assert flagged == sorted(flagged) and any(flagged) and not all(flagged)
    for part in (False, True):
        flops = [r["flops"] for r in rows if bool(r["caveats"]) == part]
        assert flops == sorted(flops, reverse=True)
