"""Every NVML name hwprofile calls exists in nvidia-ml-py, and the NVML stand-ins use only real names.

hwprofile reaches NVML through ``pynvml`` objects passed around (``nvml.nvmlDeviceGet...``) and a few names
given as strings (``getattr(nvml, "nvml...")``). Each such call is inside a ``try`` that keeps a GPU-less or
older machine working, so a name the binding lacks would fail silently, forever (as the compute-process
query once did). nvidia-ml-py imports without a GPU, so its names are checked here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from fake_nvml import StrictNvml, real

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^(nvml[A-Z]\w*|NVML_\w+)$")


def nvml_names(source: str) -> set[str]:
    """NVML names in Python source: attributes (``x.nvmlFoo``) and whole-string constants ("nvmlFoo")."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and NAME.match(node.attr):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.match(node.value):
            found.add(node.value)
    return found


def code_names() -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for path in sorted([*(ROOT / "hwprofile").rglob("*.py"), *(ROOT / "exporters").rglob("*.py")]):
        for name in nvml_names(path.read_text()):
            where.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return where


def test_the_code_calls_only_names_nvidia_ml_py_has():
    names = code_names()
    assert "nvmlDeviceGetComputeRunningProcesses_v3" in names and "nvmlDeviceGetTotalEnergyConsumption" in names
    missing = {n: files for n, files in names.items() if not hasattr(real, n)}
    assert not missing, f"NVML names nvidia-ml-py {getattr(real, '__version__', '')} lacks: {missing}"


def test_the_scan_finds_a_name_the_binding_lacks():
    source = 'procs = nvml.nvmlDeviceGetComputeProcesses(h)\nfn = getattr(nvml, "nvmlDeviceGetFoo")\n'
    assert {n for n in nvml_names(source) if not hasattr(real, n)} == {"nvmlDeviceGetComputeProcesses",
                                                                      "nvmlDeviceGetFoo"}


def test_the_stand_in_refuses_names_the_binding_lacks():
    with pytest.raises(TypeError, match="nvmlDeviceGetComputeProcesses"):
        type("Old", (StrictNvml,), {"nvmlDeviceGetComputeProcesses": lambda self, h: []})
    fake = StrictNvml()
    with pytest.raises(AttributeError):
        fake.nvmlDeviceGetComputeProcesses  # noqa: B018
    with pytest.raises(real.NVMLError_FunctionNotFound):
        fake.nvmlDeviceGetComputeRunningProcesses_v3(None)
    assert fake.NVML_PERF_POLICY_LOW_UTILIZATION == 4


def test_every_stand_in_in_the_tests_uses_real_names():
    bad = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name == "test_nvml_names.py":
            continue
        for name in nvml_names(path.read_text()):
            if not hasattr(real, name):
                bad.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not bad, f"stand-ins or tests use NVML names nvidia-ml-py lacks: {bad}"
