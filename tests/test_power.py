"""The power test (issue 19, item 7): synthetic sweeps on the default design with known truths.

Every truth (latency ∝ acts, ∝ flops, ∝ flops^0.5·acts^0.5, constant) times lognormal noise of σ = 0.10,
20 seeds each, 4 rows (ort:cpu and torch:cpu at batch 1 and 8) per sweep: 80 answered rows per truth. The
design is the default sweep's (hwprofile.sweep._config.DEFAULT_*), its counts the real EfficientNet-B0 counts
computed analytically. Seeded: the same cases every run, no timing involved.
"""

import pytest

from hwprofile.analysis._power import RIGHT, TRUTHS, design_points, simulate
from hwprofile.sweep._config import DEFAULT_MODELS, DEFAULT_SCALES, DEFAULT_STRATEGIES

SIGMA = 0.10
SEEDS = 20


@pytest.fixture(scope="module")
def power():
    points = design_points(DEFAULT_MODELS[0], DEFAULT_STRATEGIES, DEFAULT_SCALES)
    return simulate(points, sigma=SIGMA, seeds=SEEDS)


@pytest.mark.slow
@pytest.mark.parametrize("truth,least", [("acts", 0.90), ("flops", 0.90), ("both", 0.80), ("constant", 0.90)])
def test_the_default_design_decides_right(power, truth, least):
    p = power[truth]
    assert p.cases == SEEDS * 4
    assert p.right >= least, (truth, dict(p.verdicts))


@pytest.mark.parametrize("truth", ["acts", "flops"])
def test_a_pure_truth_is_never_called_the_other_metric(power, truth):
    assert power[truth].wrong_metric == 0, dict(power[truth].verdicts)


def test_the_simulation_knows_what_is_right():
    assert set(TRUTHS) == set(RIGHT) == {"acts", "flops", "both", "constant"}
    assert TRUTHS["both"] == (0.5, 0.5) and RIGHT["constant"] == {"neither", "not distinguishable"}
