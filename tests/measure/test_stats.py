import json
import math

import pytest

from hwprofile.profile import LatencyStats, latency_stats, rel_ci_halfwidth
from hwprofile.profile._stats import median_ci, quantile


def test_quantile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    values = sorted([3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.3])
    for q in (0, 0.1, 0.25, 0.5, 0.9, 0.99, 1):
        assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_median_ci_ranks():
    values = list(range(1, 101))  # ranks 40 and 61 (1-based) for n = 100
    assert median_ci(values) == (40, 61)
    assert median_ci([5, 1, 3]) == (5, 3) or median_ci(sorted([5, 1, 3])) == (1, 5)
    lo, hi = median_ci(sorted(range(1000)))
    assert lo < 500 < hi and hi - lo < 80


def test_rel_ci_halfwidth_shrinks_with_samples():
    wide = rel_ci_halfwidth([10 + (i % 7) for i in range(20)])
    narrow = rel_ci_halfwidth([10 + (i % 7) / 100 for i in range(2000)])
    assert narrow < 0.01 < wide


def test_summarize_one_repeat():
    samples = [10.0] * 50 + [11.0] * 49 + [40.0]
    s = latency_stats([samples], "perf_counter_ns", noise_cv=0.1)
    assert s.median_ms == 10.5 and s.min_ms == 10 and s.max_ms == 40 and s.iterations == 100 and s.repeats == 1
    assert s.p99_ms > s.p90_ms >= s.median_ms and s.iqr_ms == pytest.approx(1.0)
    assert s.cv == pytest.approx(s.std_ms / s.mean_ms) and s.noisy  # one 4x outlier pushes CV over 10 %
    assert s.median_ci_ms[0] <= s.median_ms <= s.median_ci_ms[1]
    assert s.samples_ms == [samples] and s.medians_ms == [10.5] and s.repeat_spread == 0


def test_summarize_repeats_uses_median_of_medians():
    s = latency_stats([[10.0] * 20, [10.4] * 20, [13.0] * 20], "cuda_event", noise_cv=0.1)
    assert s.repeats == 3 and s.iterations == 60 and s.medians_ms == [10, 10.4, 13]
    assert s.median_ms == 10.4 and s.median_ci_ms == [10, 13]
    assert s.repeat_spread == pytest.approx(0.3) and s.noisy
    quiet = latency_stats([[10.0] * 20, [10.2] * 20], "cuda_event", noise_cv=0.1)
    assert not quiet.noisy and quiet.timing_method == "cuda_event"


def test_round_trip_and_json():
    s = latency_stats([[1.0, 2.0, 3.0]], "perf_counter_ns")
    d = json.loads(json.dumps(s.to_dict()))
    assert LatencyStats.from_dict(d) == s
    for key in ("median_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "std_ms", "iqr_ms", "cv", "noisy",
                "median_ci_ms", "iterations", "repeats", "timing_method", "samples_ms", "medians_ms"):
        assert key in d


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        latency_stats([[]], "perf_counter_ns")
    assert math.isinf(rel_ci_halfwidth([0.0, 0.0, 0.0]))
