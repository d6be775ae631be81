"""Shared exports (made once per session in tests/conftest.py's onnx_cache) and the TensorRT stand-in."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def b0(onnx_cache):
    """EfficientNet-B0, dynamic batch, fp32, verified."""
    from exporters import to_onnx

    return to_onnx("EfficientNet-B0", batch="dynamic", cache_dir=onnx_cache)


@pytest.fixture(scope="session")
def y200_fp16(onnx_cache):
    """RegNetY-200MF, dynamic batch, fp16 graph, verified."""
    from exporters import to_onnx

    return to_onnx("RegNetY-200MF", batch="dynamic", fp16=True, cache_dir=onnx_cache)


@pytest.fixture
def to_onnx_module():
    """The exporters.to_onnx *module* (the package attribute of that name is the function)."""
    import exporters  # noqa: F401

    return sys.modules["exporters.to_onnx"]


@pytest.fixture
def tiny_net():
    """A small conv-bn-relu-pool-linear network with an image input (C, H, W) = (3, 32, 32)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


@pytest.fixture
def install_trt(monkeypatch):
    """``install_trt(which)`` installs a strict TensorRT stand-in as ``tensorrt`` and returns it;
    ``which`` picks the identifier list (common, 10.16.1.11 or 11.4.0.106)."""
    import exporters  # noqa: F401
    import fake_tensorrt

    def install(which: str = "common"):
        fake = fake_tensorrt.make(which)
        monkeypatch.setitem(sys.modules, "tensorrt", fake)
        monkeypatch.setattr(sys.modules["exporters.to_tensorrt"], "_gpu_name", lambda: "Fake GPU 80GB")
        return fake

    return install


@pytest.fixture
def fake_trt(install_trt):
    """The strict stand-in with the names common to TensorRT 10.16 and 11.4."""
    return install_trt("common")
