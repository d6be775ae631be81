"""The model zoo: pycls's 36 ImageNet baselines plus the paper's RegNetZ-500MF and -4GF.

Names are spelled as pycls's ``model_zoo.py`` spells them and looked up case-insensitively.
RegNets are expanded with pycls's own generation rules; EfficientNet, ResNet and ResNeXt
are transcribed from pycls's ``configs/dds_baselines`` files.
"""

from __future__ import annotations

import difflib
from functools import cache

from hwprofile.bounds import shown
from hwprofile.errors import UnknownModelError
from hwprofile.zoo._regnet import adjust_block_compatibility, generate_regnet
from hwprofile.zoo._scaling import scale
from hwprofile.zoo._specs import Activation, AnyNetSpec, BlockType, EffNetSpec, ModelSpec

# name: (DEPTH, W0, WA, WM, GROUP_W)  -- configs/dds_baselines/regnet{x,y}/*.yaml
_REGNETX = {
    "RegNetX-200MF": (13, 24, 36.44, 2.49, 8),
    "RegNetX-400MF": (22, 24, 24.48, 2.54, 16),
    "RegNetX-600MF": (16, 48, 36.97, 2.24, 24),
    "RegNetX-800MF": (16, 56, 35.73, 2.28, 16),
    "RegNetX-1.6GF": (18, 80, 34.01, 2.25, 24),
    "RegNetX-3.2GF": (25, 88, 26.31, 2.25, 48),
    "RegNetX-4.0GF": (23, 96, 38.65, 2.43, 40),
    "RegNetX-6.4GF": (17, 184, 60.83, 2.07, 56),
    "RegNetX-8.0GF": (23, 80, 49.56, 2.88, 120),
    "RegNetX-12GF": (19, 168, 73.36, 2.37, 112),
    "RegNetX-16GF": (22, 216, 55.59, 2.1, 128),
    "RegNetX-32GF": (23, 320, 69.86, 2.0, 168),
}
_REGNETY = {
    "RegNetY-200MF": (13, 24, 36.44, 2.49, 8),
    "RegNetY-400MF": (16, 48, 27.89, 2.09, 8),
    "RegNetY-600MF": (15, 48, 32.54, 2.32, 16),
    "RegNetY-800MF": (14, 56, 38.84, 2.4, 16),
    "RegNetY-1.6GF": (27, 48, 20.71, 2.65, 24),
    "RegNetY-3.2GF": (21, 80, 42.63, 2.66, 24),
    "RegNetY-4.0GF": (22, 96, 31.41, 2.24, 64),
    "RegNetY-6.4GF": (25, 112, 33.22, 2.27, 72),
    "RegNetY-8.0GF": (17, 192, 76.82, 2.19, 56),
    "RegNetY-12GF": (19, 168, 73.36, 2.37, 112),
    "RegNetY-16GF": (18, 200, 106.23, 2.48, 112),
    "RegNetY-32GF": (20, 232, 115.89, 2.53, 232),
}
# The paper's RegNetZ (ClassyVision definitions; pycls ships none). name: params + (train, test res)
_REGNETZ = {
    "RegNetZ-500MF": ((21, 16, 10.7, 2.51, 4), (224, 256)),
    "RegNetZ-4GF": ((28, 48, 14.5, 2.226, 8), (256, 288)),
}
_RESNET_DEPTHS = {"50": (3, 4, 6, 3), "101": (3, 4, 23, 3), "152": (3, 8, 36, 3)}
# name: (STEM_W, DEPTHS, WIDTHS, HEAD_W, train res, test res)  -- EN-B*_dds_8gpu.yaml
_EFFNET = {
    "EfficientNet-B0": (32, (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 1280, 224, 256),
    "EfficientNet-B1": (32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 40, 80, 112, 192, 320), 1280, 240, 274),
    "EfficientNet-B2": (32, (2, 3, 3, 4, 4, 5, 2), (16, 24, 48, 88, 120, 208, 352), 1408, 260, 298),
    "EfficientNet-B3": (40, (2, 3, 3, 5, 5, 6, 2), (24, 32, 48, 96, 136, 232, 384), 1536, 300, 342),
    "EfficientNet-B4": (48, (2, 4, 4, 6, 6, 8, 2), (24, 32, 56, 112, 160, 272, 448), 1792, 380, 434),
    "EfficientNet-B5": (48, (3, 5, 5, 7, 7, 9, 3), (24, 40, 64, 128, 176, 304, 512), 2048, 456, 522),
}


def _regnet(name: str, family: str, params: tuple, *, bot_mul: float, se_r: float,
            block: BlockType, activation: Activation, res: tuple[int, int] = (224, 256)) -> AnyNetSpec:
    depth, w0, wa, wm, group_w = params
    widths, ds = generate_regnet(wa, w0, wm, depth)
    n = len(widths)
    ws, bs, gs = adjust_block_compatibility(widths, [bot_mul] * n, [group_w] * n)
    return AnyNetSpec(
        name=name, family=family, stem_type="simple_stem_in", stem_w=32, block_type=block,
        depths=tuple(ds), widths=ws, strides=(2,) * n, bot_muls=bs, group_widths=gs,
        se_r=se_r, head_w=0, activation=activation, train_res=res[0], test_res=res[1], base=name,
    )


def _resnet(name: str, depth: str, *, next_: bool) -> AnyNetSpec:
    bot_muls = (0.5,) * 4 if next_ else (0.25,) * 4
    group_ws = (4, 8, 16, 32) if next_ else (64, 128, 256, 512)
    ws, bs, gs = adjust_block_compatibility((256, 512, 1024, 2048), bot_muls, group_ws)
    return AnyNetSpec(
        name=name, family="resnext" if next_ else "resnet", stem_type="res_stem_in", stem_w=64,
        block_type="res_bottleneck_block", depths=_RESNET_DEPTHS[depth], widths=ws,
        strides=(1, 2, 2, 2), bot_muls=bs, group_widths=gs, se_r=0.0, head_w=0,
        activation="relu", train_res=224, test_res=256, base=name,
    )


def _effnet(name: str, row: tuple) -> EffNetSpec:
    stem_w, depths, widths, head_w, train_res, test_res = row
    return EffNetSpec(
        name=name, family="effnet", stem_w=stem_w, depths=depths, widths=widths,
        strides=(1, 2, 2, 2, 1, 2, 1), exp_ratios=(1, 6, 6, 6, 6, 6, 6), kernels=(3, 3, 5, 3, 5, 5, 3),
        se_r=0.25, head_w=head_w, activation="silu", train_res=train_res, test_res=test_res, base=name,
    )


@cache
def zoo() -> dict[str, ModelSpec]:
    """All base specs by their pycls name, in pycls's zoo order, RegNetZ last."""
    specs: dict[str, ModelSpec] = {}
    for name, p in _REGNETX.items():
        specs[name] = _regnet(name, "regnetx", p, bot_mul=1.0, se_r=0.0,
                              block="res_bottleneck_block", activation="relu")
    for name, p in _REGNETY.items():
        specs[name] = _regnet(name, "regnety", p, bot_mul=1.0, se_r=0.25,
                              block="res_bottleneck_block", activation="relu")
    for depth in _RESNET_DEPTHS:
        specs[f"ResNet-{depth}"] = _resnet(f"ResNet-{depth}", depth, next_=False)
    for depth in _RESNET_DEPTHS:
        specs[f"ResNeXt-{depth}"] = _resnet(f"ResNeXt-{depth}", depth, next_=True)
    for name, row in _EFFNET.items():
        specs[name] = _effnet(name, row)
    for name, (p, res) in _REGNETZ.items():
        specs[name] = _regnet(name, "regnetz", p, bot_mul=4.0, se_r=0.25,
                              block="res_bottleneck_linear_block", activation="silu", res=res)
    return specs


def model_names() -> list[str]:
    """Zoo names in display order."""
    return list(zoo())


def get_spec(name: str) -> ModelSpec:
    """The base spec named ``name`` (case-insensitive); suggests close names when unknown."""
    if not isinstance(name, str):
        raise UnknownModelError(f"model name {shown(name)}: expected a string, e.g. 'ResNet-50'")
    by_lower = {k.lower(): v for k, v in zoo().items()}
    spec = by_lower.get(name.strip().lower())
    if spec is not None:
        return spec
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)
    names = [zoo_name for zoo_name in zoo() if zoo_name.lower() in close]
    hint = f"did you mean {', '.join(names)}?" if names else "see `hwprofile models` for the zoo"
    raise UnknownModelError(f"unknown model {name!r}: {hint}")


def resolve(model: str, strategy: str | None = None, s: float = 1.0) -> ModelSpec:
    """The spec of zoo model ``model``, scaled by ``strategy`` to ``s`` times its flops if given."""
    spec = get_spec(model)
    return spec if strategy is None else scale(spec, strategy, s)
