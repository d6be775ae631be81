"""Shared fixtures; gpu/trt tests are skipped automatically without the hardware."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from helpers import has_cuda

DATA = Path(__file__).parent / "data"




def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_gpu = has_cuda()
    has_trt = importlib.util.find_spec("tensorrt") is not None
    rehearse = os.environ.get("HWPROFILE_GPU_IMAGE") == "1"
    for item in items:
        if "gpu_image" in item.keywords and not rehearse:
            item.add_marker(pytest.mark.skip(reason="downloads several GB: set HWPROFILE_GPU_IMAGE=1 to run"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "trt" in item.keywords and not (has_trt and has_gpu):
            item.add_marker(pytest.mark.skip(reason="needs TensorRT and a CUDA GPU"))


def _session_cache(factory: pytest.TempPathFactory) -> Path:
    """The session's $HWPROFILE_CACHE: exports (``onnx/``) and engines (``tensorrt/``) made once per test run."""
    path = factory.getbasetemp() / "hwprofile-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's ~/.cache/hwprofile from tests; share the session's exports instead."""
    monkeypatch.setenv("HWPROFILE_CACHE", str(_session_cache(tmp_path_factory)))


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    """The export cache shared by every test module: the one the CLI's default (``$HWPROFILE_CACHE/onnx``) uses,
    so a model exported once (``cache_dir=onnx_cache`` or by a command) is a cache hit for every other test."""
    path = _session_cache(tmp_path_factory) / "onnx"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def pycls_golden() -> dict:
    data = json.loads((DATA / "pycls_complexity.json").read_text())
    data.pop("_source")
    return data


@pytest.fixture
def cli(capsys):
    """Run ``hwprofile`` in-process: returns (exit code, stdout, stderr)."""
    from hwprofile.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
