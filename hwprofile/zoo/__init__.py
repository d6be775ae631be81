"""The networks of "Fast and Accurate Model Scaling", exactly as pycls defines them: frozen specs, the zoo of
baselines, the paper's scaling rules and the analytic counts (flops, params, activations). Pure; no heavy library.

Modules: ``_specs`` (the frozen specifications), ``_regnet`` (RegNet generation), ``_scaling`` (width, depth,
resolution and compound scaling), ``_complexity`` (pycls's counting twin), ``_table`` (the 38 baselines and name
resolution), ``_timm`` (timm's model families, for ``hwprofile import``).
"""

from __future__ import annotations

from hwprofile.zoo._complexity import Complexity, complexity
from hwprofile.zoo._scaling import MAX_BATCH, PAPER_STRATEGIES, check_scale, pycls_type, scale, scaling_factors
from hwprofile.zoo._specs import AnyNetSpec, EffNetSpec, ModelSpec, scaled_label, spec_from_dict, spec_to_dict
from hwprofile.zoo._table import get_spec, model_names, resolve, zoo
from hwprofile.zoo._timm import CNN_FAMILIES, families, family, is_cnn, source, zoo_counts, zoo_name

__all__ = [
    "AnyNetSpec", "check_scale", "CNN_FAMILIES", "Complexity", "complexity", "EffNetSpec", "families", "family",
    "get_spec", "is_cnn", "MAX_BATCH", "model_names", "ModelSpec", "PAPER_STRATEGIES", "pycls_type", "resolve",
    "scale", "scaled_label", "scaling_factors", "source", "spec_from_dict", "spec_to_dict", "zoo", "zoo_counts",
    "zoo_name"
]
