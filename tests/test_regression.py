"""The fits behind the answer, checked against references: scipy's nnls, and textbook weighted least squares."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import nnls

from hwprofile.analysis import design_se
from hwprofile.analysis._power import design_points
from hwprofile.analysis._regression import additive_fit, loglog_fit, nnls3, t_quantile


def test_nnls3_matches_scipy_on_random_problems():
    rng = np.random.default_rng(0)
    design = rng.random((300, 9, 3)) - 0.2
    target = rng.random((300, 9)) - 0.4
    ours = nnls3(design, target)
    ref = np.array([nnls(design[i], target[i])[0] for i in range(300)])
    assert np.all(ours >= 0) and np.allclose(ours, ref, atol=1e-9)


def test_loglog_fit_is_weighted_least_squares_with_t_intervals():
    rng = np.random.default_rng(1)
    f = np.exp(rng.uniform(18, 22, 12))
    a = np.exp(rng.uniform(14, 17, 12))
    w = rng.uniform(0.5, 3.0, 12)
    t = 3e-6 * f ** 0.4 * a ** 0.7 * np.exp(rng.normal(0, 0.1, 12) / np.sqrt(w))
    fit = loglog_fit({"flops": f, "acts": a}, t, w)
    x = np.column_stack([np.ones(12), np.log(f), np.log(a)])
    y = np.log(t)
    sw = np.sqrt(w / w.mean())
    coef, *_ = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)
    resid = (y - x @ coef) * sw
    s2 = resid @ resid / 9
    cov = s2 * np.linalg.inv((x * sw[:, None]).T @ (x * sw[:, None]))
    tq = stats.t.ppf(0.975, 9)
    assert t_quantile(9) == pytest.approx(tq)
    for i, m in ((1, "flops"), (2, "acts")):
        e = fit.slope(m)
        assert e.value == pytest.approx(coef[i]) and e.se == pytest.approx(math.sqrt(cov[i, i]))
        assert (e.low, e.high) == pytest.approx((coef[i] - tq * e.se, coef[i] + tq * e.se))
    d = fit.contrast({"acts": 1, "flops": -1})
    assert d.se == pytest.approx(math.sqrt(cov[1, 1] + cov[2, 2] - 2 * cov[1, 2]))
    # leave-one-out from the hat matrix equals refitting without each point
    errs = []
    for i in range(12):
        keep = np.arange(12) != i
        c, *_ = np.linalg.lstsq(x[keep] * sw[keep, None], y[keep] * sw[keep], rcond=None)
        errs.append(abs(math.exp(x[i] @ c - y[i]) - 1) * 100)
    assert fit.loo_median_abs_pct == pytest.approx(float(np.median(errs)))


def test_additive_fit_recovers_exact_coefficients_and_bounds_its_share():
    f = np.array([4e8, 1.5e9, 1.4e9, 5.6e9, 6.1e9, 1.4e9, 5.5e9])
    a = np.array([6.7e6, 1.3e7, 2.7e7, 2.7e7, 1.08e8, 1.3e7, 3.4e7])
    t = 2e-9 * f + 1e-7 * a + 0.5
    fit = additive_fit(f, a, t)
    assert (fit.a_ms_per_flop, fit.b_ms_per_act, fit.c_ms) == pytest.approx((2e-9, 1e-7, 0.5), rel=1e-6)
    share = np.mean(1e-7 * a / t)
    assert fit.share_acts.value == pytest.approx(share) and fit.share_acts.low == pytest.approx(share)
    assert fit.loo_median_abs_pct == pytest.approx(0.0, abs=1e-6)
    noisy = additive_fit(f, a, t * np.exp(np.random.default_rng(3).normal(0, 0.1, 7)))
    assert 0 <= noisy.share_acts.low <= noisy.share_acts.value <= noisy.share_acts.high <= 1


def test_large_s_buys_precision_per_record():
    """SE(β_acts) falls like σ / (0.5 ln s): the default design's per-unit-noise errors are below the old one's."""
    old = design_points("EfficientNet-B0", ("d", "w", "r", "dw", "dwr", "dWr"), (1, 4))
    new = design_points("EfficientNet-B0", ("w", "r", "dWr"), (1, 4, 16))
    se_old = design_se([p.flops for p in old], [p.acts for p in old])
    se_new = design_se([p.flops for p in new], [p.acts for p in new])
    assert se_old.n == se_new.n == 7
    assert se_new.se_delta < 0.6 * se_old.se_delta and se_new.se_acts < 0.6 * se_old.se_acts
    assert design_se([p.flops for p in new[:2]], [p.acts for p in new[:2]]) is None  # 2 points: nothing to fit
