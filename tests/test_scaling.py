import math

import pytest

from hwprofile.errors import StrategyError
from hwprofile.zoo import complexity, get_spec, pycls_type, scale, scaling_factors


def test_fast_compound_factors():
    f = scaling_factors("d1_w8_g8_r1", 4.0)
    assert (f.d, f.w, f.g, f.r) == (4 ** 0.1, 4 ** 0.4, 4 ** 0.4, 4 ** 0.05)
    assert scaling_factors("dWr", 4.0) == f


@pytest.mark.parametrize("strategy,exps", [
    ("d", (1, 0, 0, 0)), ("w", (0, .5, 0, 0)), ("r", (0, 0, 0, .5)), ("dw", (.5, .25, 0, 0)),
    ("dr", (.5, 0, 0, .25)), ("wr", (0, .25, 0, .25)), ("dwr", (1 / 3, 1 / 6, 0, 1 / 6)),
    ("g", (0, 0, 1, 0)), ("wg", (0, .5, .5, 0)), ("alpha:1", (0, .5, .5, 0)),
])
def test_factor_table(strategy, exps):
    f = scaling_factors(strategy, 16.0)
    got = [math.log(x, 16) for x in (f.d, f.w, f.g, f.r)]
    assert got == pytest.approx(exps)


def test_pycls_getting_started_example():
    spec = scale(get_spec("RegNetY-4.0GF"), "dWr", 4)
    assert spec.depths == (2, 7, 14, 2)
    assert spec.widths == (224, 336, 896, 1904)
    assert set(spec.group_widths) == {112}
    assert spec.train_res == 240
    cx = complexity(spec)
    assert (cx.flops, cx.params, cx.acts) == (15_608_249_240, 68_144_472, 26_542_408)


@pytest.mark.parametrize("model,strategy,s,flops,params,acts", [
    # ratios to the base model, as in the science notes (sec. 1.3 and 5.3)
    ("EfficientNet-B0", "w", 16, 14.55, 12.56, 4.00),
    ("EfficientNet-B0", "d", 16, 16.41, 15.00, 12.88),
    ("EfficientNet-B0", "dwr", 4, 4.40, 2.50, 3.19),
    ("EfficientNet-B0", "dWr", 16, 14.20, 8.96, 5.08),
    ("EfficientNet-B0", "r", 16, 15.93, 1.00, 15.98),
    ("RegNetY-4.0GF", "w", 4, 3.08, None, None),
    ("RegNetY-4.0GF", "wg", 4, 3.96, None, None),
    ("RegNetY-4.0GF", "dWr", 4, 3.93, None, None),
    ("RegNetY-400MF", "w", 16, None, None, 3.69),
    ("RegNetY-400MF", "dWr", 16, None, None, 4.28),
])
def test_achieved_ratios(model, strategy, s, flops, params, acts):
    base = get_spec(model)
    bx, cx = complexity(base), complexity(scale(base, strategy, s))
    for want, got in ((flops, cx.flops / bx.flops), (params, cx.params / bx.params), (acts, cx.acts / bx.acts)):
        if want is not None:
            assert round(got, 2) == want


def test_pinned_scaled_specs():
    en = scale(get_spec("EfficientNet-B0"), "dWr", 16)
    assert (en.depths, en.widths, en.stem_w, en.head_w, en.train_res) == (
        (1, 3, 3, 4, 4, 5, 1), (48, 72, 120, 240, 336, 584, 968), 96, 3880, 256)
    assert complexity(en).flops == 5_477_638_310
    r50 = scale(get_spec("ResNet-50"), "dw", 4)
    # plain w leaves group width alone: ResNet's single 64-wide group snaps widths back to 256k
    assert (r50.depths, r50.widths, r50.group_widths) == ((6, 8, 12, 6), (256, 512, 1024, 2048), (64, 128, 256, 512))
    r50g = scale(get_spec("ResNet-50"), "dwg", 4)
    assert r50g.widths != r50.widths
    y = scale(get_spec("RegNetY-400MF"), "w", 2)
    assert (y.widths, y.group_widths, y.stem_w) == ((64, 144, 296, 624), (8, 8, 8, 8), 32)


def test_scaling_returns_new_spec_and_keeps_base():
    base = get_spec("EfficientNet-B0")
    spec = scale(base, "w", 4)
    assert base.widths == (16, 24, 40, 80, 112, 192, 320)
    assert (spec.base, spec.strategy, spec.scale, spec.name) == ("EfficientNet-B0", "w", 4.0, "EfficientNet-B0 w x4")


def test_alpha_family_matches_fast_scaling():
    base = get_spec("RegNetY-4.0GF")
    for s in (2, 4, 16):
        a, b = scale(base, "alpha:0.8", s), scale(base, "dWr", s)
        assert (a.depths, a.widths, a.group_widths, a.train_res) == (b.depths, b.widths, b.group_widths, b.train_res)
    assert pycls_type("alpha:0.3333333333333333").startswith("d0.33")


def test_strategies_are_case_sensitive():
    with pytest.raises(StrategyError):
        scale(get_spec("EfficientNet-B0"), "DWR", 2)


@pytest.mark.parametrize("bad", ["", "x", "dWR", "d1_q2", "d_w", "dabc", "alpha:2", "alpha:x", "d1_wnan", "d-1"])
def test_unknown_strategies(bad):
    with pytest.raises(StrategyError):
        scale(get_spec("EfficientNet-B0"), bad, 2)


@pytest.mark.parametrize("s", [0, -1, float("nan"), float("inf"), "abc"])
def test_invalid_scale(s):
    with pytest.raises(StrategyError):
        scale(get_spec("EfficientNet-B0"), "w", s)


def test_collapsing_resolution_is_an_error():
    with pytest.raises(StrategyError, match="collapses"):
        scale(get_spec("EfficientNet-B0"), "r", 1e-6)
