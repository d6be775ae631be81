"""The answer to "does runtime follow activations or flops?": the quality policy, the verdict rules, the
additive reading, the equal-flops contrast, leave-one-out errors and predictions."""

import json
import math

import pytest

from hwprofile.analysis import MIN_MODELS, Verdict, answer, equal_flops, predict, select, strategy_growth, usable
from hwprofile.analysis._follows import SIGMA_FLOOR, fit, follows_table, rule
from hwprofile.analysis._power import design_points, synthetic_records
from hwprofile.analysis._predict import candidates, latency_model
from hwprofile.analysis._regression import Estimate
from hwprofile.profile import Profile
from hwprofile.sweep._config import DEFAULT_SCALES, DEFAULT_STRATEGIES
from synthetic import synthetic_profile

DEFAULT = design_points("EfficientNet-B0", DEFAULT_STRATEGIES, DEFAULT_SCALES)


# ----------------------------------------------------------------------------------------------- the policy

def _latency(ms, **kw):
    return {"median_ms": ms, "repeats": 1, "timing_method": "synthetic", **kw}


def test_usable_weights_clean_and_noisy_records_by_their_spread_and_excludes_the_rest():
    recs = [r for r in synthetic_profile(noise=0.0, batches=(1,)).records][:7]
    ms = recs[0].median_ms
    recs[0] = recs[0].replace(latency=_latency(ms, medians_ms=[ms, ms * 1.1, ms * 0.95], repeats=3))  # noisy spread
    recs[1] = recs[1].replace(latency=_latency(ms, median_ci_ms=[ms * 0.99, ms * 1.01]))  # one tight process
    recs[2] = recs[2].replace(quality="disturbed", quality_reasons=["other load 1.2 > 0.5"])
    recs[3] = recs[3].replace(status="failed", reason="boom", latency=None, throughput=None)
    recs[4] = recs[4].replace(latency=_latency(ms, cv=0.2))  # assessed now: noisy, and it counts
    recs[5] = recs[5].replace(latency=_latency(ms))  # no spread at all
    u = usable(recs)
    by = {x.record.label: x for x in u.used}
    assert [(e.record.label, e.why) for e in u.excluded] == [
        (recs[2].label, "disturbed: other load 1.2 > 0.5"), (recs[3].label, "failed: boom")]
    spread = by[recs[0].label]
    sd = math.sqrt(sum((math.log(v) - sum(map(math.log, (1, 1.1, 0.95))) / 3) ** 2 for v in (1, 1.1, 0.95)) / 2)
    assert spread.spread_from == "processes" and spread.processes == 3 and spread.sd_log == pytest.approx(sd)
    assert spread.weight == pytest.approx(3 / sd ** 2)
    tight = by[recs[1].label]
    assert tight.spread_from == "samples" and tight.weight == pytest.approx(1 / SIGMA_FLOOR ** 2)
    assert by[recs[5].label].spread_from == "none" and by[recs[5].label].weight == pytest.approx(1 / SIGMA_FLOOR ** 2)
    assert by[recs[4].label].record.quality is None  # noisy by CV, used
    assert not u.equal_weights
    assert usable([recs[5], recs[6].replace(latency=_latency(ms))]).equal_weights


def test_a_table_without_spreads_gets_equal_weights_and_says_so():
    """Imported profiles (a table of latencies, no repeats or samples, maybe no params) are answered with equal
    weights, and say so; predictions work from them too."""
    recs = [r.replace(params=None) for r in synthetic_records(DEFAULT, 0.0, 1.0, sigma=0.0, seed=0)]
    (row, *_) = answer(recs)
    assert row.equal_weights and row.to_dict()["weights"] == "equal (no record carries its spread)"
    assert row.verdict is Verdict.ACTS and row.beta_params is None and row.r["params"] is None
    prof = Profile(devices={"synthetic": {}}, records=recs)
    (pred,) = predict(prof, {"flops": recs[1].flops, "acts": recs[1].acts}, runner="ort:cpu", batch=1)
    assert pred.latency_ms == pytest.approx(recs[1].median_ms, rel=1e-6)


# ----------------------------------------------------------------------------------------------- the rules

def _e(value, lo, hi):
    return Estimate(value, lo, hi, None)


@pytest.mark.parametrize("f,a,expected", [
    ((0.0, -0.1, 0.1), (1.0, 0.8, 1.2), Verdict.ACTS),
    ((1.0, 0.8, 1.2), (0.0, -0.1, 0.1), Verdict.FLOPS),
    ((0.5, 0.3, 0.7), (0.5, 0.3, 0.7), Verdict.BOTH),
    ((0.3, 0.1, 0.5), (1.2, 1.0, 1.4), Verdict.ACTS),  # both grow, acts more: acts
    ((0.0, -0.05, 0.05), (0.0, -0.05, 0.05), Verdict.NEITHER),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), Verdict.NEITHER),  # constant latency, no noise
    ((0.4, -0.1, 0.9), (0.6, 0.1, 1.1), Verdict.UNDECIDED),  # δ holds 0, β_flops reaches 0
    ((-0.6, -0.9, -0.3), (0.2, -0.1, 0.5), Verdict.UNDECIDED),  # δ > 0 but β_acts reaches 0
])
def test_verdict_rules(f, a, expected):
    bf, ba = _e(*f), _e(*a)
    half = max(bf.high - bf.value, ba.high - ba.value)
    d = _e(ba.value - bf.value, ba.value - bf.value - 1.5 * half, ba.value - bf.value + 1.5 * half)
    verdict, basis = rule(bf, ba, d)
    assert verdict is expected and "δ" in basis or "β" in basis


@pytest.mark.parametrize("truth,expected", [((0.0, 1.0), "acts"), ((1.0, 0.0), "flops"), ((0.5, 0.5), "both"),
                                            ((0.0, 0.0), "neither")])
def test_exact_truths_on_the_default_design_give_the_right_verdict_on_every_row(truth, expected):
    """Must show: latency exactly ∝ acts, ∝ flops, ∝ flops^0.5·acts^0.5 and constant."""
    rows = answer(synthetic_records(DEFAULT, *truth, sigma=0.0, seed=0))
    assert len(rows) == 4 and {r.verdict.value for r in rows} == {expected}
    for r in rows:
        assert r.beta_flops.value == pytest.approx(truth[0], abs=1e-9)
        assert r.beta_acts.value == pytest.approx(truth[1], abs=1e-9)
        assert r.sigma == pytest.approx(0.0, abs=1e-9) and r.decide is None and r.n_used == len(DEFAULT)


def test_the_answer_is_deterministic_and_its_json_is_plain():
    recs = synthetic_records(DEFAULT, 0.3, 0.7, sigma=0.1, seed=4)
    assert follows_table(recs) == follows_table(recs)
    text = json.dumps(follows_table(recs))  # no default=str: every value is plain JSON
    row = json.loads(text)[0]
    for key in ("beta_flops", "beta_acts", "delta", "beta_params", "share_acts"):
        assert set(row[key]) == {"value", "ci", "se"} and len(row[key]["ci"]) == 2
    assert row["verdict"] in {v.value for v in Verdict} and row["basis"] and row["reading"]
    assert set(row["loo_pct"]) == {"joint", "additive"} and row["prediction_fit"] in ("joint", "additive")
    assert set(row["r"]) == {"flops", "params", "acts"} and row["df"] == len(DEFAULT) - 3


def test_an_undecided_row_says_what_would_decide_it():
    """Too noisy for the old default design: the forecast names unmeasured models at large s, or repeats."""
    old = design_points("EfficientNet-B0", ("d", "w", "r", "dw", "dwr", "dWr"), (1, 4))
    rows = answer(synthetic_records(old, 0.0, 1.0, sigma=0.25, seed=11))
    undecided = [r for r in rows if r.verdict is Verdict.UNDECIDED]
    assert undecided
    for r in undecided:
        d = r.decide
        assert d is not None and d.text and d.se_delta_now == pytest.approx(r.delta.se)
        assert d.add or d.repeats
        assert all((st, s) not in {(p.strategy, p.scale) for p in old} for st, s in d.add)
        if d.add and d.decides:
            assert d.se_delta_after < d.se_delta_now and max(s for _, s in d.add) >= 8
    text = r.to_dict()["decide"]["text"]
    assert text.startswith("leans ")


def test_too_few_usable_records_are_not_fitted_and_the_row_says_what_to_measure():
    recs = [r for r in synthetic_profile(noise=0.0, batches=(1,)).records]
    few = [r.replace(quality="disturbed", quality_reasons=["x"]) for r in recs[:10]] + recs[10:]
    (row,) = answer(few)
    assert row.n_used == 3 and row.n_total == 13 and row.verdict is Verdict.UNDECIDED and row.beta_acts is None
    assert "too few usable records" in row.basis and row.note == "re-measure the 10 excluded records"
    (row,) = answer(recs[:MIN_MODELS - 1])
    assert row.note == "measure 1 more model"


def test_a_design_that_cannot_separate_flops_from_acts_says_so():
    """Every model scaled by w: flops and acts grow together, so the forecast adds a model that differs."""
    w_only = design_points("EfficientNet-B0", ("w",), (1, 2, 4, 8, 16))
    (row, *_) = answer(synthetic_records(w_only, 0.0, 1.0, sigma=0.05, seed=0))
    assert row.verdict is Verdict.UNDECIDED and row.delta.se > 1
    assert row.decide.add and row.decide.add[0][0] != "w" and row.decide.decides
    exact = [r.replace(acts=r.flops // 50) for r in synthetic_records(w_only, 0.0, 1.0, sigma=0.05, seed=0)]
    (row, *_) = answer(exact)  # acts exactly proportional to flops: no fit can tell them apart
    assert row.verdict is Verdict.UNDECIDED and "cannot separate" in row.basis and row.beta_acts is None
    assert "equal flops and different acts" in row.decide.text


# ----------------------------------------------------------------------------------------------- the reading

def test_the_additive_fit_reads_the_share_of_time_with_activations():
    recs = synthetic_records(DEFAULT, 0.0, 1.0, sigma=0.0, seed=0)
    (row, *_) = answer(recs)
    assert row.share_acts.value == pytest.approx(1.0) and row.loo_additive_pct == pytest.approx(0.0, abs=1e-6)
    assert row.reading().startswith("100% [100, 100] of time scales with activations; "
                                    "runtime ∝ flops^0.00·acts^1.00")
    # t = a*flops + b*acts + c exactly: the fit finds the shares
    base = recs[0]
    mixed = [r.replace(latency=_latency(2e-9 * r.flops + 3e-7 * r.acts + 1.0)) for r in recs if r.batch == 1
             and r.runner == "ort:cpu"]
    (row,) = answer(mixed)
    shares = [3e-7 * r.acts / (2e-9 * r.flops + 3e-7 * r.acts + 1.0) for r in mixed]
    assert row.share_acts.value == pytest.approx(sum(shares) / len(shares), rel=1e-6)
    assert row.additive.c_ms == pytest.approx(1.0, rel=1e-6) and base.flops


def test_leave_one_out_errors_are_bounded_on_the_committed_profiles():
    """Must show: predict's leave-one-out error (the chosen fit) is under 100% on every committed row."""
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].glob("profiles/*__*.json")):
        for row in answer(Profile.load(path).records):
            chosen = row.loo_additive_pct if row.prediction_fit == "additive" else row.loo_joint_pct
            assert chosen is not None and chosen < 100, (path.name, row.key)


# ----------------------------------------------------------------------------------------------- contrast

def test_equal_flops_contrast_is_latency_relative_to_w_beside_the_counts():
    recs = synthetic_records(DEFAULT, 0.0, 1.0, sigma=0.0, seed=0)
    rows = equal_flops(recs)
    assert {(c.strategy, c.scale) for c in rows} == {(st, s) for st in ("r", "dWr") for s in (4.0, 16.0)}
    assert len(rows) == 4 * 4  # every row of the sweep
    for c in rows:
        assert c.latency_ratio.value == pytest.approx(c.acts_ratio)  # latency ∝ acts exactly
        assert c.latency_ratio.low == pytest.approx(c.latency_ratio.high)
        assert 0.8 < c.flops_ratio < 1.25
    r16 = next(c for c in rows if c.strategy == "r" and c.scale == 16.0)
    assert r16.text() == f"x16: r/w latency {r16.acts_ratio:.2f}x [{r16.acts_ratio:.2f}, {r16.acts_ratio:.2f}] " \
                         f"at {r16.flops_ratio:.2f}x flops, {r16.acts_ratio:.2f}x acts"
    noisy = equal_flops(synthetic_records(DEFAULT, 0.0, 1.0, sigma=0.1, seed=2))
    assert all(c.latency_ratio.low < c.latency_ratio.value < c.latency_ratio.high for c in noisy)


# ----------------------------------------------------------------------------------------------- growth and fits

def test_strategy_growth_ratios():
    rows = strategy_growth(synthetic_profile(noise=0.0).records)
    w4 = next(r for r in rows if r["strategy"] == "w" and r["scale"] == 4.0 and r["batch"] == 1)
    assert w4["latency_ratio"] == pytest.approx(w4["acts_ratio"] ** 0.9)
    assert w4["latency_exponent"] == pytest.approx(math.log(w4["latency_ratio"]) / math.log(w4["flops_ratio"]))


def test_fit_recovers_exponent_and_loo_error_is_small():
    recs = [r for r in synthetic_profile(noise=0.0).records if r.batch == 1]
    f = fit(recs, ("acts",))
    assert f.slopes[0] == pytest.approx(0.9) and f.r2 == pytest.approx(1.0)
    assert f.loo_median_abs_pct < 1e-6
    assert fit(recs[:2], ("acts",)) is None  # too few points


def test_predict_and_select():
    prof = synthetic_profile(noise=0.0)
    counts = candidates("EfficientNet-B0", ["dWr"], [3.0])[0]
    preds = predict(prof, counts, batch=1)
    assert len(preds) == 1 and preds[0].fit == "log-log" and not preds[0].outside
    assert preds[0].latency_ms == pytest.approx(1e-6 * counts["acts"] ** 0.9, rel=1e-6)
    assert preds[0].loo_error_pct == pytest.approx(0.0, abs=1e-6)
    assert preds[0].memory_mb == pytest.approx(4 * counts["acts"] / 1e6, rel=1e-6)
    budget = preds[0].latency_ms * 1.0001
    rows = select(prof, "EfficientNet-B0", budget, runner="ort:cpu", batch=1)
    assert rows and all(r["predicted_ms"] <= budget for r in rows)
    assert [r["flops"] for r in rows] == sorted((r["flops"] for r in rows), reverse=True)
    assert any(r["strategy"] == "dWr" and r["scale"] == 3.0 for r in rows)
    assert not select(prof, "EfficientNet-B0", 1e-9, batch=1)


def test_predict_never_asks_the_log_log_fit_outside_the_measured_range():
    """The log-log fit may win on leave-one-out error, but far outside the measured models the additive fit
    (linear in the counts) answers: no wild extrapolation."""
    recs = [r for r in synthetic_profile(noise=0.0).records if r.batch == 1]
    model = latency_model(recs)
    assert model.chosen == "log-log"
    inside = candidates("EfficientNet-B0", ["dWr"], [3.0])[0]
    far = candidates("EfficientNet-B0", ["r"], [64.0])[0]
    assert model.fit_for(inside) == "log-log" and model.fit_for(far) == "additive"
    ms, name = model.predict(far)
    assert name == "additive" and 0 < ms < 1e3 * max(r.median_ms for r in recs)
