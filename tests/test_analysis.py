import math

import pytest

from hwprofile.analysis import fit, follows_table, strategy_growth
from hwprofile.predict import candidates, predict, select
from synthetic import synthetic_profile


@pytest.mark.parametrize("driver", ["acts", "flops"])
def test_best_predictor_is_the_metric_that_drives_runtime(driver):
    rows = follows_table(synthetic_profile(driver=driver).records)
    assert len(rows) == 2 and all(r["n"] == 13 for r in rows)
    assert all(r["best"] == driver for r in rows)
    assert all(r[f"exponent_{driver}"] == pytest.approx(0.9, abs=0.05) for r in rows)
    assert all(r[f"r_{driver}"] > 0.99 for r in rows)


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
