"""A runner with scripted latencies and injectable faults, for tests only.

It is not among ``RUNNER_NAMES``: a test registers it (``register_runner("fake", PATH)``), so no
user can select it by accident. Options:

- ``latencies_ms``: list of per-unit latencies, cycled; ``time_once`` returns them (timing_method
  "scripted") and, with ``sleep: true``, also sleeps that long in ``infer``.
- ``fault``: ``segfault`` | ``hang`` | ``alloc`` (touch ``alloc_mb`` MiB) | ``raise`` | ``memory_error``,
  triggered in ``fault_at``: ``load`` (default) or ``infer``.
- per-layer times (``layer_times``, one scripted layer): ``profiled_latencies_ms`` (cycled, default [2.0]) are
  the profiled runs; ``layers_fault`` ``raise`` | ``segfault`` fails them; ``layers_alloc_mb`` touches that
  much memory while profiling; ``drift_ms_per_round`` slows the machine linearly: each call of ``layer_times``
  adds that much to every later latency (its own profiled runs: half of it). The breakdown's ``phases`` is the
  runner's own log of its runs ("clean", "profiled") in order, which later clean runs of the same process extend.
"""

from __future__ import annotations

import ctypes
import itertools
import time
from typing import Any

from hwprofile.runners._base import (
    COMMON_BOOKKEEPING_SETTINGS,
    COMMON_OBSERVED_SETTINGS,
    COMMON_RESULT_SETTINGS,
    Runner,
)
from hwprofile.vocabulary import MODES

PATH = "hwprofile.runners._fake:FakeRunner"


class FakeRunner(Runner):
    name = "fake"
    timing_method = "scripted"
    modes = MODES
    kinds = ("spec", "onnx", "engine")
    input = "module"
    option_names = ("latencies_ms", "sleep", "fault", "fault_at", "alloc_mb", "unsupported",
                    "profiled_latencies_ms", "layers_fault", "layers_alloc_mb", "drift_ms_per_round")
    result_settings = {**COMMON_RESULT_SETTINGS, "library": "backend"}
    #: the scripted latencies stand for the machine's speed: tests change them to make a regression
    observed_settings = (*COMMON_OBSERVED_SETTINGS, "options.latencies_ms", "options.sleep")
    bookkeeping_settings = (*COMMON_BOOKKEEPING_SETTINGS, "calls", "options.fault", "options.fault_at",
                            "options.alloc_mb", "options.unsupported", "options.profiled_latencies_ms",
                            "options.layers_fault", "options.layers_alloc_mb", "options.drift_ms_per_round")

    @classmethod
    def unsupported_reason(cls, workload) -> str | None:
        reason = workload.options.get("unsupported")
        return str(reason) if reason else super().unsupported_reason(workload)

    def load(self, workload) -> None:
        self.workload, opts = workload, workload.options
        self._lat = itertools.cycle([float(v) for v in opts.get("latencies_ms", [1.0])])
        self._calls = 0
        self._hold: list[bytearray] = []
        self._phases: list[str] = []
        self._drift = 0.0  # added to every latency after each profiled round (drift_ms_per_round)
        if opts.get("fault_at", "load") == "load":
            self._fault()

    def _fault(self) -> None:
        fault = self.loaded.options.get("fault")
        if fault == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif fault == "hang":
            while True:
                time.sleep(1)
        elif fault == "alloc":
            self._hold.append(bytearray(b"\x01") * (int(self.loaded.options.get("alloc_mb", 1024)) << 20))
        elif fault == "raise":
            raise RuntimeError("injected failure\nsecond line")
        elif fault == "memory_error":
            raise MemoryError("injected allocation failure")

    def infer(self) -> None:
        self._calls += 1
        if self._calls == 1 and self.loaded.options.get("fault_at") == "infer":
            self._fault()
        if self.loaded.options.get("sleep"):
            time.sleep(next(self._lat) / 1000)

    def time_once(self) -> float:
        self._phases.append("clean")
        if self.loaded.options.get("sleep"):
            return super().time_once()
        self.infer()
        return next(self._lat) + self._drift

    def layer_times(self, iterations: int, info=None) -> dict[str, Any]:
        """One scripted layer over ``iterations`` profiled runs (see the module docstring)."""
        opts = self.loaded.options
        if opts.get("layers_fault") == "raise":
            raise RuntimeError("injected per-layer failure")
        if opts.get("layers_fault") == "segfault":
            ctypes.string_at(0)
        hold = bytearray(b"\x01") * (int(opts.get("layers_alloc_mb", 0)) << 20)
        profiled = itertools.cycle([float(v) for v in opts.get("profiled_latencies_ms", [2.0])])
        step = float(opts.get("drift_ms_per_round", 0.0))
        totals = []
        for _ in range(iterations):
            self._phases.append("profiled")
            self._calls += 1
            totals.append(next(profiled) + self._drift + step / 2)  # halfway between the clean blocks around it
        del hold
        self._drift += step
        total = sorted(totals)[len(totals) // 2]
        return {"method": "scripted", "iterations": iterations, "profiled_run_ms": total, "time_source": "cpu",
                "rows": [{"name": "scripted layer", "kind": "layer", "op_type": "Fake", "time_ms": 0.75 * total,
                          "flops": 0, "bytes": None, "onnx_nodes": []}],
                "phases": self._phases}

    def settings(self) -> dict[str, Any]:
        return {"library": "fake", "threads": 1, "calls": self._calls}

    def close(self) -> None:
        self._hold = []


class FakeCudaRunner(FakeRunner):
    """The fake runner declared as a GPU runner (``PATH_CUDA``): GPU launch paths, tested on the CPU."""

    name = "fake:cuda"
    device_type = "cuda"


PATH_CUDA = "hwprofile.runners._fake:FakeCudaRunner"
