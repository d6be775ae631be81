"""ONNX Runtime runners: ``ort:cpu``, ``ort:cuda``, ``ort:tensorrt``.

Session: full graph optimisation (ORT_ENABLE_ALL), sequential execution, ``inter_op_num_threads=1``,
``intra_op_num_threads`` set explicitly (default: physical cores), CPU arena and memory pattern set
explicitly; all recorded. After creating a session, the first active provider must be the one asked
for: a silent fallback to CPU is an error, never a CPU number labelled CUDA. GPU runners also record
where each node ran (``node_placement``: ONNX Runtime's profiler on a separate session, closed
before the timed one is created), since nodes a provider cannot take fall back to CPU one by one. GPU runners bind inputs
and outputs on the device (IOBinding); option ``iobinding`` exercises the same path on CPU. The
TensorRT provider caches its engines (``trt_engine_cache_enable``) under ``trt_cache_dir``.
Options: threads, iobinding, cpu_mem_arena, mem_pattern, trt_cache_dir, seed.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from .._lazy import heavy
from ..layer_join import LAYOUT_OPS, map_optimized, onnx_layers
from ..measure.stats import typical_times
from . import env
from .base import COMMON_BOOKKEEPING_SETTINGS, COMMON_OBSERVED_SETTINGS, COMMON_RESULT_SETTINGS, Runner, Unsupported

_NP_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


class ProviderFallback(RuntimeError):
    """The session does not run on the execution provider that was asked for."""


def check_provider(runner: str, asked: str, active: list[str]) -> None:
    """Raise ProviderFallback unless ``asked`` is the session's first provider."""
    if not active or active[0] != asked:
        got = active[0] if active else "no provider"
        raise ProviderFallback(f"{runner} asked for {asked} but the session runs on {got}")


def default_threads() -> int:
    """ONNX Runtime's own default: one intra-op thread per physical core."""
    try:
        cores = psutil.cpu_count(logical=False)
    except Exception:  # pragma: no cover
        cores = None
    return int(cores or len(os.sched_getaffinity(0)) or 1)


class OrtRunner(Runner):
    kinds = ("onnx",)
    input = "onnx"
    modes = ("infer",)
    provider = "CPUExecutionProvider"
    option_names = ("threads", "iobinding", "cpu_mem_arena", "mem_pattern", "trt_cache_dir", "seed")
    result_settings = {
        **COMMON_RESULT_SETTINGS, "library": "backend", "onnxruntime_version": "backend version",
        "distributions": "backend version",  # onnxruntime vs onnxruntime-gpu: other builds
        "providers_requested": "provider", "providers_active": "provider", "provider_options": "provider",
        "inter_op_threads": "thread setting", "graph_optimization_level": "setting", "execution_mode": "setting",
        "cpu_mem_arena": "setting", "options.cpu_mem_arena": "setting", "mem_pattern": "setting",
        "options.mem_pattern": "setting", "iobinding": "setting", "options.iobinding": "setting",
        "input_dtype": "precision",
        # ort:tensorrt: the provider's TensorRT and whether it converts an fp32 graph to fp16 (weak typing)
        "tensorrt_major": "backend version", "tensorrt_typing": "precision",
        "provider_options.trt_fp16_enable": "precision",
    }
    #: node_placement: where each graph node ran, read on a separate profiled session. It follows from the
    #: providers, the onnxruntime build and the graph, which refuse on their own; a difference with those
    #: equal is worth a look (a profiler that failed on one side), not a refusal.
    observed_settings = (*COMMON_OBSERVED_SETTINGS, "node_placement", "provider_options.device_id")
    bookkeeping_settings = (
        *COMMON_BOOKKEEPING_SETTINGS, "options.trt_cache_dir",
        # per-process stream handles and cache folders in the provider options: they differ on every run
        "provider_options.user_compute_stream", "provider_options.has_user_compute_stream",
        "provider_options.trt_engine_cache_path", "provider_options.trt_timing_cache_path")
    result_fingerprint = ("libraries.onnxruntime", "libraries.onnxruntime_distributions", "libraries.onnx")

    @classmethod
    def preload(cls) -> None:
        heavy("onnxruntime")

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        return None if env.has_module("onnxruntime") else "onnxruntime is not installed"

    @classmethod
    def version_text(cls) -> str:
        return f"onnxruntime {env.ort_version()} ({', '.join(env.ort_distributions())})"

    def _providers(self) -> list:
        return [self.provider]

    def _session_options(self, ort, opts: dict):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = int(opts.get("threads") or default_threads())
        so.inter_op_num_threads = 1
        so.enable_cpu_mem_arena = bool(opts.get("cpu_mem_arena", True))
        so.enable_mem_pattern = bool(opts.get("mem_pattern", True))
        so.log_severity_level = 3
        return so

    def load(self, workload) -> None:
        ort = heavy("onnxruntime")

        self.workload, opts = workload, workload.options
        if not hasattr(self, "_stream"):  # a GPU runner made it before its placement session
            self._stream = self._make_stream()
        so = self._session_options(ort, opts)
        self._sess = ort.InferenceSession(workload.path, so, providers=self._providers())
        self._active = self._sess.get_providers()
        check_provider(self.name, self.provider, self._active)
        self._so = so
        inp = self._sess.get_inputs()[0]
        dtype = self._input_dtype(inp.type)
        rng = np.random.default_rng(int(opts.get("seed", 0)))
        x = rng.standard_normal(self._input_shape(inp.shape), dtype=np.float32).astype(dtype)
        self._iobinding = bool(opts.get("iobinding", self.device_type == "cuda"))
        self._feed = {inp.name: x}
        if self._iobinding:
            self._bind(ort, inp.name, x)

    def _make_stream(self):
        return None

    def _input_dtype(self, onnx_type: str) -> str:
        dtype = _NP_TYPES.get(onnx_type)
        if dtype is None:
            raise Unsupported(f"{self.name}: input type {onnx_type} is not a float image")
        want = "float16" if self.workload.precision == "fp16" else "float32"
        if dtype != want and not self._converts_precision():
            raise Unsupported(f"{self.name}: the ONNX file takes {dtype} but precision "
                              f"{self.workload.precision} was asked; export a matching graph")
        return dtype

    def _converts_precision(self) -> bool:
        return False

    def _input_shape(self, dims: list) -> tuple[int, ...]:
        w = self.workload
        if len(dims) != 4:
            raise Unsupported(f"{self.name}: expected an NCHW image input, got shape {dims}")
        if isinstance(dims[0], int) and dims[0] != w.batch:
            raise Unsupported(f"{self.name}: the ONNX file has a fixed batch {dims[0]}, not {w.batch}")
        channels = dims[1] if isinstance(dims[1], int) else 3
        fixed = [d for d in dims[2:] if isinstance(d, int)]
        if fixed and any(d != w.resolution for d in fixed):
            raise Unsupported(f"{self.name}: the ONNX file has a fixed resolution {dims[2:]}, "
                              f"not {w.resolution}")
        return (w.batch, channels, w.resolution, w.resolution)

    def _bind(self, ort, name: str, x) -> None:
        kind, index = self._ort_device()
        self._io = self._sess.io_binding()
        self._x_ort = ort.OrtValue.ortvalue_from_numpy(x, kind, index)
        self._io.bind_ortvalue_input(name, self._x_ort)
        for out in self._sess.get_outputs():
            self._io.bind_output(out.name, kind, index)

    def _ort_device(self) -> tuple[str, int]:
        return "cpu", 0

    def infer(self) -> None:
        if self._iobinding:
            self._sess.run_with_iobinding(self._io)
        else:
            self._sess.run(None, self._feed)

    def node_placement(self) -> dict[str, Any]:
        """Which execution provider ran each graph node, from ONNX Runtime's profiler on a separate,
        identical session run once and closed (the timed session stays unprofiled): nodes per
        provider, and the op types of nodes that ran elsewhere than on this runner's provider."""
        ort = heavy("onnxruntime")

        with tempfile.TemporaryDirectory(prefix="hwprofile-placement-") as tmp:
            so = self._session_options(ort, self.workload.options)
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(tmp) / "placement")
            sess = ort.InferenceSession(self.workload.path, so, providers=self._providers())
            inp = sess.get_inputs()[0]
            x = np.zeros(self._input_shape(inp.shape), dtype=self._input_dtype(inp.type))
            sess.run(None, {inp.name: x})
            events = json.loads(Path(sess.end_profiling()).read_text())
            del sess
        nodes = {e["name"].removesuffix("_kernel_time"): (e["args"]["provider"], e["args"].get("op_name", "?"))
                 for e in events if e.get("cat") == "Node" and "provider" in (e.get("args") or {})}
        elsewhere = Counter(f"{op} on {prov}" for prov, op in nodes.values() if prov != self.provider)
        return {"by_provider": dict(Counter(prov for prov, _ in nodes.values())),
                "elsewhere": dict(sorted(elsewhere.items()))}

    def layer_times(self, iterations: int, info=None) -> dict[str, Any]:
        """Per-node times of ``iterations`` runs on a separate, profiled session (ONNX Runtime's profiler,
        ``Node`` events ending ``_kernel_time``), each optimized node joined to the exported nodes it
        runs (from the optimized graph ORT saves) and to their counts (``info``)."""
        onnx = heavy("onnx")
        ort = heavy("onnxruntime")

        info = info or onnx_layers(self.workload.path, self.workload.batch)
        warm = 3
        unprofiled = []
        with tempfile.TemporaryDirectory(prefix="hwprofile-layers-") as tmp:
            so = self._session_options(ort, self.workload.options)
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(tmp) / "layers")
            so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
            sess = ort.InferenceSession(self.workload.path, so, providers=self._providers())
            for i in range(warm + iterations):  # interleaved with unprofiled runs: both see the same load
                sess.run(None, self._feed)
                if i >= warm:
                    unprofiled.append(self.time_once())
            events = json.loads(Path(sess.end_profiling()).read_text())
            del sess
            optimized = onnx.load(str(Path(tmp) / "optimized.onnx"), load_external_data=False)
        opt_nodes = [(n.name, n.op_type) for n in optimized.graph.node]
        groups, dropped = map_optimized(info, opt_nodes)
        runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                      key=lambda e: e["ts"])[warm:]
        per_run: list[dict[str, float]] = [{} for _ in runs]
        meta: dict[str, tuple] = {}
        for e in events:
            if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
                continue
            i = next((k for k, r in enumerate(runs) if r["ts"] <= e["ts"] <= r["ts"] + r["dur"]), None)
            if i is None:
                continue
            name = e["name"].removesuffix("_kernel_time")
            per_run[i][name] = per_run[i].get(name, 0.0) + e["dur"] / 1000.0
            args = e.get("args") or {}
            shapes = [next(iter(d.values())) for d in (args.get("input_type_shape") or []) +
                      (args.get("output_type_shape") or []) if isinstance(d, dict) and d]
            meta[name] = (args.get("op_name", "?"), args.get("provider", "?"),
                          sum(math.prod(s) for s in shapes) * info.element_bytes)
        mean, med, total = typical_times(per_run, [r["dur"] / 1000.0 for r in runs])
        times = {k: (mean[k], med[k]) for k in mean}
        rows = []
        for name, op in opt_nodes:
            if name not in times:
                continue
            nodes = groups.get(name) or []
            row = {"name": name, "kind": "overhead" if op in LAYOUT_OPS else "layer", "ort_op": meta[name][0],
                   "provider": meta[name][1], "time_ms": times[name][0],
                   "median_ms": times[name][1],
                   **(info.counts(nodes) if nodes else {"onnx_nodes": [], "onnx_ops": [], "flops": 0,
                                                        "bytes": None, "op_type": meta[name][0]})}
            if row["kind"] == "overhead":
                row.update(op_type=op, bytes=meta[name][2])
            rows.append(row)
        return {"method": "onnxruntime profiler (SessionOptions.enable_profiling), a separate session; per node "
                          "the mean over the typical profiled runs (total in the interquartile range; median_ms: "
                          "over all), interleaved with as many unprofiled runs",
                "iterations": len(runs), "profiled_run_ms": total,
                "unprofiled_ms": statistics.median(unprofiled),
                "element_bytes": info.element_bytes, "rows": rows, "onnx_nodes_not_run": dropped}

    @property
    def session(self):
        """The ONNX Runtime session (e.g. for a bare-loop comparison)."""
        return self._sess

    @property
    def feed(self) -> dict:
        return self._feed

    def settings(self) -> dict[str, Any]:
        ort = heavy("onnxruntime")

        so = self._so
        return {"library": "onnxruntime", "onnxruntime_version": ort.__version__,
                "distributions": env.ort_distributions(), "device": self.device,
                "providers_requested": [p if isinstance(p, str) else p[0] for p in self._providers()],
                "providers_active": list(self._active),
                "provider_options": self._sess.get_provider_options().get(self.provider, {}),
                "threads": so.intra_op_num_threads, "inter_op_threads": so.inter_op_num_threads,
                "graph_optimization_level": str(so.graph_optimization_level).rsplit(".", 1)[-1],
                "execution_mode": str(so.execution_mode).rsplit(".", 1)[-1],
                "cpu_mem_arena": so.enable_cpu_mem_arena, "mem_pattern": so.enable_mem_pattern,
                "iobinding": self._iobinding, "input_dtype": str(next(iter(self._feed.values())).dtype),
                **({"node_placement": self._placement} if hasattr(self, "_placement") else {})}

    def close(self) -> None:
        for name in ("_io", "_x_ort", "_sess", "_feed", "_stream"):
            if hasattr(self, name):
                delattr(self, name)


class OrtCpuRunner(OrtRunner):
    name = "ort:cpu"
