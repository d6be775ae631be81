"""Frozen, pure-data network specifications in pycls's vocabulary.

A spec is everything needed to count a network analytically or to build it in PyTorch.
RegNets are stored in their expanded AnyNet form (as pycls's scaler converts them), so
every spec is either an :class:`AnyNetSpec` (RegNet X/Y/Z, ResNet, ResNeXt) or an
:class:`EffNetSpec` (EfficientNet).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Union

from hwprofile.errors import ConfigError

Activation = Literal["relu", "silu"]
BlockType = Literal["res_bottleneck_block", "res_bottleneck_linear_block"]


@dataclass(frozen=True)
class AnyNetSpec:
    """pycls AnyNet: stem, stages of bottleneck blocks, head (``ANYNET.*`` keys)."""

    name: str
    family: str  # regnetx | regnety | regnetz | resnet | resnext
    stem_type: Literal["simple_stem_in", "res_stem_in"]
    stem_w: int
    block_type: BlockType
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    strides: tuple[int, ...]
    bot_muls: tuple[float, ...]
    group_widths: tuple[int, ...]
    se_r: float
    head_w: int
    activation: Activation
    train_res: int
    test_res: int
    num_classes: int = 1000
    base: str = ""  # the zoo model this spec was scaled from
    strategy: str | None = None  # the scaling strategy applied to ``base``
    scale: float = 1.0  # the requested flops factor (the achieved one is counted)

    kind = "anynet"

    def replace(self, **changes: Any) -> "AnyNetSpec":
        """A copy with ``changes`` applied (specs are immutable)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class EffNetSpec:
    """pycls EfficientNet: stem, stages of MBConv blocks, conv head (``EN.*`` keys)."""

    name: str
    family: str  # effnet
    stem_w: int
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    strides: tuple[int, ...]
    exp_ratios: tuple[float, ...]
    kernels: tuple[int, ...]
    se_r: float
    head_w: int
    activation: Activation
    train_res: int
    test_res: int
    num_classes: int = 1000
    base: str = ""
    strategy: str | None = None
    scale: float = 1.0

    kind = "effnet"

    @property
    def group_widths(self) -> tuple[int, ...]:
        """Depthwise convs: one channel per group in every stage."""
        return tuple(1 for _ in self.depths)

    def replace(self, **changes: Any) -> "EffNetSpec":
        """A copy with ``changes`` applied (specs are immutable)."""
        return dataclasses.replace(self, **changes)


ModelSpec = Union[AnyNetSpec, EffNetSpec]



def spec_to_dict(spec: ModelSpec) -> dict:
    """A spec as plain JSON data (tuples become lists) with its ``kind`` ("anynet" | "effnet")."""
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(spec).items()}
    return {**data, "kind": spec.kind}


def spec_from_dict(data: dict) -> ModelSpec:
    """The inverse of :func:`spec_to_dict` (lists become tuples again)."""
    data = dict(data)
    kind = data.pop("kind", None)
    cls = {"anynet": AnyNetSpec, "effnet": EffNetSpec}.get(kind)
    if cls is None:
        raise ConfigError(f"spec dict has kind {kind!r}; expected 'anynet' or 'effnet'")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})
    except TypeError as exc:
        raise ConfigError(f"spec dict is incomplete: {exc}") from None


def scaled_label(model: str, strategy: str | None, scale: float) -> str:
    """The one display name of a (scaled) model: ``EfficientNet-B0 dWr x4``; the base model is its name."""
    return model if not strategy else f"{model} {strategy} x{scale:g}"
