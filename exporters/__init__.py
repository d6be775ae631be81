"""PyTorch -> ONNX -> TensorRT exporters with artifact records and a file cache.

``import exporters`` is cheap: torch, onnx, onnxruntime and tensorrt are imported by the
functions that need them.
"""

from __future__ import annotations

from exporters.artifacts import EngineArtifact, OnnxArtifact, Verification
from exporters.to_onnx import to_onnx
from exporters.to_tensorrt import to_tensorrt

__all__ = ["EngineArtifact", "OnnxArtifact", "Verification", "to_onnx", "to_tensorrt"]
