"""timm's model names: the family of each (the timm module that registers it), which are CNNs, and which
are zoo models.

The families come from ``hwprofile/data/timm_models.json``, read from timm's source by
``scripts/timm_models.py`` (the file records the timm commit). A name may carry a pretrained tag
(``resnet50.a1_in1k``); the tag is ignored.

**The CNN filter** (:func:`is_cnn`): a model is a CNN when its family is in :data:`CNN_FAMILIES` and its
name matches none of :data:`NOT_CNN_NAMES`. The rule: every layer that mixes information across space is a
convolution or a pooling; no self-attention (attention-pooling heads included), no token-mixing MLP, no
recurrence. Channel attention (squeeze-excitation and its kin: SE, ECA, eSE, split attention, selective
kernels) is part of many CNNs, RegNetY and EfficientNet among them, and does not exclude a model. A family
whose module also defines attention models is kept only where those are named apart (``NOT_CNN_NAMES``);
families whose status is unclear (e.g. ``fastvit``, whose ``sa`` models use attention) are left out.
docs/results.md ("What public benchmarks say") states the same.

**The zoo mapping** (:func:`zoo_name`): timm models built exactly as a zoo model (pycls's definitions):
``regnetx_002`` -> RegNetX-200MF, ``regnety_040`` -> RegNetY-4.0GF, ``efficientnet_b0`` -> EfficientNet-B0,
``resnet50`` -> ResNet-50, ``resnext50_32x4d`` -> ResNeXt-50. :func:`zoo_counts` counts the zoo model at
any input resolution with hwprofile's (pycls's) rules, for comparison with a table's own counts.
"""

from __future__ import annotations

import fnmatch
import json
from functools import cache
from pathlib import Path

from hwprofile.zoo._complexity import complexity
from hwprofile.zoo._table import get_spec, model_names

DATA = Path(__file__).resolve().parents[1] / "data" / "timm_models.json"

#: timm families (modules) of convolutional networks, by the rule in the module docstring
CNN_FAMILIES: frozenset[str] = frozenset({
    "byobnet", "convmixer", "convnext", "cspnet", "densenet", "dla", "dpn", "efficientnet", "fasternet",
    "focalnet", "ghostnet", "hardcorenas", "hgnet", "hrnet", "inception_next", "inception_resnet_v2",
    "inception_v3", "inception_v4", "mambaout", "metaformer", "mobilenetv3", "nasnet", "nfnet", "pnasnet",
    "rdnet", "regnet", "repghost", "repvit", "res2net", "resnest", "resnet", "resnetv2", "rexnet", "selecsls",
    "senet", "sknet", "starnet", "tresnet", "vgg", "vovnet", "xception", "xception_aligned",
})
#: names inside those families that are not CNNs (or not real models)
NOT_CNN_NAMES: tuple[tuple[str, str], ...] = (
    ("test_*", "timm's tiny test networks, not models"),
    ("*hybrid*", "MobileNetV4 hybrids: multi-query attention blocks"),
    ("*_clip", "CLIP ResNets: an attention-pooling head (their *_clip_gap twins are CNNs)"),
    ("caformer*", "MetaFormer CAFormer: self-attention in its last stages"),
)

_REGNET = {"002": "200MF", "004": "400MF", "006": "600MF", "008": "800MF", "016": "1.6GF", "032": "3.2GF",
           "040": "4.0GF", "064": "6.4GF", "080": "8.0GF", "120": "12GF", "160": "16GF", "320": "32GF"}
#: timm name -> zoo name, for timm models built as pycls builds the zoo model
ZOO: dict[str, str] = {
    **{f"regnet{xy}_{k}": f"RegNet{xy.upper()}-{v}" for xy in "xy" for k, v in _REGNET.items()},
    **{f"efficientnet_b{i}": f"EfficientNet-B{i}" for i in range(6)},
    **{f"resnet{d}": f"ResNet-{d}" for d in (50, 101, 152)},
    **{f"resnext{d}_32x4d": f"ResNeXt-{d}" for d in (50, 101)},  # timm has no resnext152_32x4d
}


@cache
def _data() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


@cache
def registry() -> dict[str, str]:
    """{timm model name: family}, as read from timm's source."""
    return {name: fam for fam, names in _data()["families"].items() for name in names}


def source() -> dict:
    """Where :func:`registry` was read: repository and commit."""
    return dict(_data()["source"])


def families() -> tuple[str, ...]:
    return tuple(_data()["families"])


def base_name(name: str) -> str:
    """The name without a pretrained tag or an imported record's resolution: ``resnet50.a1_in1k`` and
    ``resnet50@224`` -> ``resnet50``."""
    return name.split("@", 1)[0].split(".", 1)[0]


def family(name: str) -> str | None:
    """The timm family (module) that registers ``name``; None for a name timm does not register."""
    return registry().get(base_name(name))


def not_cnn_reason(name: str) -> str | None:
    """Why a name of a CNN family is still not counted as a CNN (None if it is, or matches no rule)."""
    base = base_name(name)
    return next((why for pattern, why in NOT_CNN_NAMES if fnmatch.fnmatchcase(base, pattern)), None)


def is_cnn(name: str) -> bool:
    return family(name) in CNN_FAMILIES and not_cnn_reason(name) is None


def zoo_name(name: str) -> str | None:
    """The zoo model a timm model is (None if it is none of them)."""
    zoo = ZOO.get(base_name(name))
    return zoo if zoo in model_names() else None


def zoo_counts(name: str, resolution: int) -> dict | None:
    """hwprofile's own counts of the zoo model ``name`` maps to, per image at ``resolution``:
    ``{"model", "resolution", "train_res", "flops", "params", "acts"}`` (flops = multiply-adds); None if
    the name maps to no zoo model."""
    zoo = zoo_name(name)
    if zoo is None:
        return None
    spec = get_spec(zoo)
    cx = complexity(spec, resolution=resolution)
    return {"model": zoo, "resolution": resolution, "train_res": spec.train_res, "flops": cx.flops,
            "params": cx.params, "acts": cx.acts}
