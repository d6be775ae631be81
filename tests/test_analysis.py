import math

import pytest

from hwprofile.analysis import fit, follows_table, strategy_growth
from hwprofile.predict import candidates, predict, select
from synthetic import synthetic_profile


@pytest.mark.parametrize("driver", ["acts", "flops"])
def test_verdict_is_the_metric_that_drives_runtime(driver):
    rows = follows_table(synthetic_profile(driver=driver).records)
    assert len(rows) == 2 and all(r["n"] == 13 and r["excluded"] == [] for r in rows)
    assert all(r["verdict"] == driver and r["verdict_ci"][0] > 0 for r in rows)
    assert all(r[f"exponent_{driver}"] == pytest.approx(0.9, abs=0.05) for r in rows)
    assert all(r[f"r_{driver}"] > 0.99 for r in rows)


@pytest.mark.parametrize("driver,expected", [("acts", {"acts"}), ("flops", {"flops"}),
                                             ("constant", {"not distinguishable", "neither"})])
def test_verdicts_of_exactly_proportional_and_constant_latency(driver, expected):
    """Must show: latency exactly proportional to acts, to flops, and constant."""
    rows = follows_table(synthetic_profile(driver=driver, exponent=1.0, noise=0.0, batches=(1, 8, 32),
                                           runners=("ort:cpu", "torch:cpu")).records)
    assert len(rows) == 6
    for r in rows:
        assert r["verdict"] in expected, r
        assert r["verdict_ci"] is not None and r["verdict_basis"]
        if driver != "constant":  # the interval of R²(driver) - R²(runner-up) lies above 0
            assert r["verdict_ci"][0] > 0 and r[f"exponent_ci_{driver}"][0] == pytest.approx(1.0)
            ws = r["within_scale"]
            assert ws[f"rho_{driver}"] == pytest.approx(1.0) and ws["scales"] == [2.0, 4.0]
        else:
            assert r["exponent_ci_acts"] == [0.0, 0.0] and r["exponent_ci_flops"] == [0.0, 0.0]


def test_verdicts_are_deterministic():
    records = synthetic_profile(driver="acts", noise=0.1).records
    assert follows_table(records) == follows_table(records)


def test_within_scale_ranks_latency_among_models_of_the_same_scale():
    """At equal s latency ranks with acts: the within-scale test decides between acts and flops."""
    from hwprofile.analysis import within_scale

    recs = [r for r in synthetic_profile(driver="acts", noise=0.0).records if r.batch == 1]
    ws = within_scale(recs)
    assert ws["rho_acts"] == pytest.approx(1.0) and ws["rho_acts"] > ws["rho_flops"]
    assert ws["n"] == 12 and ws["diff_ci"][0] > 0  # the base model (the only s = 1) does not enter
    assert within_scale(recs[:3]) is None  # s = 1, 2, 4 once each: no scale with 3 records


def test_only_clean_records_are_fitted_and_the_rest_listed():
    import dataclasses

    prof = synthetic_profile(driver="acts", noise=0.0, batches=(1,))
    recs = list(prof.records)
    recs[1] = recs[1].replace(quality="disturbed", quality_reasons=["other load 1.2 > 0.5"],
                                  latency={**recs[1].latency.to_dict(), "median_ms": recs[1].median_ms * 30})
    recs[2] = recs[2].replace(latency={**recs[2].latency.to_dict(), "cv": 0.2})  # assessed now: noisy
    (row,) = follows_table(recs)
    assert row["n"] == 11 and row["verdict"] == "acts"
    assert [(e["quality"], e["why"]) for e in row["excluded"]] == [("disturbed", "other load 1.2 > 0.5"),
                                                                  ("noisy", "latency CV 0.2 > 0.1")]
    few = [r.replace(quality="disturbed") for r in recs[:10]] + recs[10:]
    (row,) = follows_table(few)
    assert row["n"] == 3 and row["verdict"] is None and "too few clean records" in row["note"]
    assert len(row["excluded"]) == 10 and row.get("r2_acts") is None


def test_fit_recovers_exponent_and_loo_error_is_small():
    recs = [r for r in synthetic_profile(noise=0.0).records if r.batch == 1]
    f = fit(recs, ("acts",))
    assert f.slopes[0] == pytest.approx(0.9) and f.r2 == pytest.approx(1.0)
    assert f.loo_median_abs_pct < 1e-6
    assert fit(recs[:2], ("acts",)) is None  # too few points


def test_strategy_growth_ratios():
    rows = strategy_growth(synthetic_profile(noise=0.0).records)
    w4 = next(r for r in rows if r["strategy"] == "w" and r["scale"] == 4.0 and r["batch"] == 1)
    assert w4["latency_ratio"] == pytest.approx(w4["acts_ratio"] ** 0.9)
    assert w4["latency_exponent"] == pytest.approx(math.log(w4["latency_ratio"]) / math.log(w4["flops_ratio"]))


def test_predict_and_select():
    prof = synthetic_profile(noise=0.0)
    counts = candidates("EfficientNet-B0", ["dWr"], [3.0])[0]
    preds = predict(prof, counts, batch=1)
    assert len(preds) == 1
    assert preds[0].latency_ms == pytest.approx(1e-6 * counts["acts"] ** 0.9, rel=1e-6)
    assert preds[0].memory_mb == pytest.approx(4 * counts["acts"] / 1e6, rel=1e-6)
    budget = preds[0].latency_ms * 1.0001
    rows = select(prof, "EfficientNet-B0", budget, runner="ort:cpu", batch=1)
    assert rows and all(r["predicted_ms"] <= budget for r in rows)
    assert [r["flops"] for r in rows] == sorted((r["flops"] for r in rows), reverse=True)
    assert any(r["strategy"] == "dWr" and r["scale"] == 3.0 for r in rows)
    assert not select(prof, "EfficientNet-B0", 1e-9, batch=1)


def test_within_scale_decides_an_across_scale_tie_and_vetoes_a_contradiction(monkeypatch):
    import hwprofile.analysis as analysis

    def says(lo, hi):
        return lambda records, rng=None: {"rho_acts": 0.9, "rho_flops": 0.1, "diff_ci": [lo, hi], "n": 12,
                                          "scales": [2.0, 4.0]}

    exact_flops = [r for r in synthetic_profile(driver="flops", noise=0.0).records if r.batch == 1]
    assert analysis.verdict(exact_flops)["verdict"] == "flops"
    monkeypatch.setattr(analysis, "within_scale", says(0.2, 0.8))  # within scales: acts
    vetoed = analysis.verdict(exact_flops)
    assert vetoed["verdict"] == "not distinguishable" and vetoed["verdict_ci"] == [0.2, 0.8]
    assert "points to acts while across scales points to flops" in vetoed["verdict_basis"]
    tie = next(r for r in follows_table(synthetic_profile(driver="acts", noise=0.1).records) if r["batch"] == 8)
    assert tie["verdict"] == "acts" and "across scales: tied" in tie["verdict_basis"]
    monkeypatch.setattr(analysis, "within_scale", says(-0.1, 0.8))  # undecided: the across-scale tie stands
    tie = next(r for r in follows_table(synthetic_profile(driver="acts", noise=0.1).records) if r["batch"] == 8)
    assert tie["verdict"] == "not distinguishable" and "across scales" in tie["verdict_basis"]
