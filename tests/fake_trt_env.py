"""The strict TensorRT stand-in (fake_tensorrt.py) in child processes, with the trt runner's CUDA parts on the CPU.

A sweep builds engines and measures in fresh child processes, which a monkeypatch in the test
cannot reach. :func:`child_pythonpath` writes a ``sitecustomize.py`` that every Python started
with that PYTHONPATH imports first: it installs the stand-in as ``tensorrt`` and replaces the
runner's stream, events, device tensors and device selection by CPU ones (as CpuTrtRunner in
tests/runners/test_trt_runner.py does). Everything else -- the export, the engine build with its
profiles and cache, the runner's TensorRT calls, the measuring child -- is the real code.
"""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path

TESTS = Path(__file__).parent
ROOT = TESTS.parent


class CpuEvent:
    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return (end.t - self.t) * 1000


def install(which: str = "common") -> types.ModuleType:
    """Install the stand-in as ``tensorrt`` in this process and put TrtRunner's CUDA parts on the CPU."""
    import fake_tensorrt
    from hwprofile.runners._trt import TrtRunner

    fake = fake_tensorrt.make(which)
    sys.modules["tensorrt"] = fake

    def device_tensor(self, torch, shape, dtype, gen=None):
        return torch.randn(shape, generator=gen).to(dtype) if gen is not None else torch.empty(shape, dtype=dtype)

    TrtRunner._cuda_setup = lambda self, torch: None
    TrtRunner._sync_device = lambda self, torch: None
    TrtRunner._new_stream = lambda self, torch: types.SimpleNamespace(cuda_stream=1234, synchronize=lambda: None)
    TrtRunner._new_events = lambda self, torch: (CpuEvent(), CpuEvent())
    TrtRunner._device_tensor = device_tensor
    TrtRunner._gpu_name = lambda self, torch: "Fake GPU 80GB"
    return fake


def child_pythonpath(folder: Path, which: str = "common") -> str:
    """A PYTHONPATH whose interpreters start with :func:`install` done (and import this checkout)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "import fake_trt_env\n"
        f"fake_trt_env.install({which!r})\n")
    return os.pathsep.join([str(folder), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
