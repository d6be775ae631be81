import pytest

from hwprofile.errors import UnknownModelError
from hwprofile.zoo import complexity, get_spec, model_names


def test_zoo_has_36_pycls_models_plus_two_regnetz(pycls_golden):
    names = model_names()
    assert len(names) == 38
    assert set(pycls_golden) <= set(names)
    assert {"RegNetZ-500MF", "RegNetZ-4GF"} <= set(names)


def test_every_pycls_zoo_model_matches_pycls_exactly(pycls_golden):
    for name, expected in pycls_golden.items():
        cx = complexity(get_spec(name))
        assert {"flops": cx.flops, "params": cx.params, "acts": cx.acts} == expected, name


@pytest.mark.parametrize("name,flops,params,acts", [
    ("EfficientNet-B0", 385_825_092, 5_288_548, 6_748_036),
    ("RegNetY-400MF", 401_849_056, 4_344_144, 3_892_496),
    ("ResNet-50", 4_089_185_256, 25_557_032, 11_315_688),
])
def test_reference_rows(name, flops, params, acts):
    cx = complexity(get_spec(name))
    assert (cx.flops, cx.params, cx.acts) == (flops, params, acts)


def test_regnetz_documented_counts():
    # pycls semantics with no head conv (science notes; pycls ships no RegNetZ)
    z500, z4 = get_spec("RegNetZ-500MF"), get_spec("RegNetZ-4GF")
    assert (z500.depths, z500.widths, z500.group_widths) == ((1, 4, 9, 7), (16, 40, 104, 256), (4,) * 4)
    assert (z4.depths, z4.widths, z4.group_widths, z4.train_res) == ((2, 6, 14, 6), (48, 104, 240, 528), (8,) * 4, 256)
    c500, c4 = complexity(z500), complexity(z4)
    assert (c500.flops, c500.params, c500.acts) == (493_604_070, 6_090_550, 5_810_182)
    assert (c4.flops, c4.params, c4.acts) == (4_015_422_144, 27_116_800, 24_191_936)


def test_regnet_expansion_quirk_first_stage_group_width():
    assert get_spec("RegNetX-8.0GF").group_widths == (80, 120, 120, 120)


def test_names_are_case_insensitive():
    assert get_spec("efficientnet-b0") is get_spec("EfficientNet-B0")
    assert get_spec("  REGNETY-4.0GF ").name == "RegNetY-4.0GF"


def test_resolutions():
    assert (get_spec("EfficientNet-B3").train_res, get_spec("EfficientNet-B3").test_res) == (300, 342)
    assert (get_spec("RegNetX-200MF").train_res, get_spec("RegNetX-200MF").test_res) == (224, 256)


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="RegNetY-4.0GF"):
        get_spec("RegNetY-4GF")
    with pytest.raises(UnknownModelError, match="hwprofile models"):
        get_spec("zzzzzz")


def test_stage_breakdown_sums_to_total():
    cx = complexity(get_spec("RegNetY-400MF"))
    assert [s.name for s in cx.stages] == ["stem", "s1", "s2", "s3", "s4", "head"]
    assert sum(s.flops for s in cx.stages) == cx.flops
    assert sum(s.acts for s in cx.stages) == cx.acts
    assert cx.stages[-2].out_size == 7
