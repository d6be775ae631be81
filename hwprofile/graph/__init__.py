"""ONNX graphs: read one safely, infer its shapes, and count its flops, params and activations with pycls's
definitions. Imports onnx only when a graph is read.

Modules: ``_read`` (loading and shape inference), ``_count`` (the counter).
"""

from __future__ import annotations

from hwprofile.graph._count import FOLDED_BN_KEY, SPEC_KEY, count_onnx
from hwprofile.graph._read import image_input, inferred_shapes, load_model, pin_batch

__all__ = ["count_onnx", "FOLDED_BN_KEY", "image_input", "inferred_shapes", "load_model", "pin_batch", "SPEC_KEY"]
