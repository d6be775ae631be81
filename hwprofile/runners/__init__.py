"""Runners: one backend each (torch, ONNX Runtime CPU / CUDA / TensorRT, native TensorRT) behind a registry of
``backend:provider`` names, with lazy imports and an availability that explains itself; each runner owns the
artifact it runs (``_prepare`` exports or builds it). Importing this package imports no heavy library.

Modules: ``_registry`` (names, availability, device resolution), ``_base`` (the Runner contract), ``_torch``,
``_ort``, ``_ort_gpu``, ``_trt``, ``_fake`` (a runner for tests), ``_prepare`` (artifacts), ``_layer_join``
(per-layer times joined to ONNX nodes).
"""

from __future__ import annotations

from hwprofile.runners._base import BOOKKEEPING, OBSERVATION, RESULT, Runner, Unsupported, check_options, longest_prefix
from hwprofile.runners._layer_join import onnx_layers
from hwprofile.runners._prepare import Artifacts, prepare_input
from hwprofile.runners._registry import (
    RUNNER_NAMES,
    availability,
    available_runners,
    check_runner_name,
    get_runner,
    load_path,
    register_plugin,
    register_runner,
    registered_runners,
    resolve_device,
    runner_class,
    runner_names,
    runner_path,
    unavailable_text,
    unregister_runner,
)
from hwprofile.runners._torch import tf32_settings

__all__ = [
    "Artifacts", "availability", "available_runners", "BOOKKEEPING", "check_options", "check_runner_name",
    "get_runner", "load_path", "longest_prefix", "OBSERVATION", "onnx_layers", "prepare_input", "register_plugin",
    "register_runner", "registered_runners", "resolve_device", "RESULT", "Runner", "runner_class", "runner_names",
    "RUNNER_NAMES", "runner_path", "tf32_settings", "unavailable_text", "unregister_runner", "Unsupported"
]
