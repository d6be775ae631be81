"""ONNX Runtime runners: ``ort:cpu``, ``ort:cuda``, ``ort:tensorrt``.

Session: full graph optimisation (ORT_ENABLE_ALL), sequential execution, ``inter_op_num_threads=1``,
``intra_op_num_threads`` set explicitly (default: physical cores), CPU arena and memory pattern set
explicitly; all recorded. After creating a session, the first active provider must be the one asked
for: a silent fallback to CPU is an error, never a CPU number labelled CUDA. GPU runners also record
where each node ran (``node_placement``: ONNX Runtime's profiler on a separate session, closed
before the timed one is created), since nodes a provider cannot take fall back to CPU one by one. GPU runners bind
inputs and outputs on the device (IOBinding); option ``iobinding`` exercises the same path on CPU. The
TensorRT provider caches its engines (``trt_engine_cache_enable``) under ``trt_cache_dir``.
Options: threads, iobinding, cpu_mem_arena, mem_pattern, trt_cache_dir, seed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import psutil

from hwprofile import env
from hwprofile._lazy import heavy, not_installed
from hwprofile.profile import typical_times
from hwprofile.runners._base import (
    COMMON_BOOKKEEPING_SETTINGS,
    COMMON_OBSERVED_SETTINGS,
    COMMON_RESULT_SETTINGS,
    Runner,
    Unsupported,
)
from hwprofile.runners._layer_join import LAYOUT_OPS, map_optimized, onnx_layers, primary_node

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
    result_fingerprint: ClassVar[tuple[str, ...]] = ("libraries.onnxruntime", "libraries.onnxruntime_distributions",
                                                     "libraries.onnx")

    @classmethod
    def preload(cls) -> None:
        heavy("onnxruntime")

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        return None if env.has_module("onnxruntime") else not_installed("onnxruntime")

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
        want = "float16" if self.loaded.precision == "fp16" else "float32"
        if dtype != want and not self._converts_precision():
            raise Unsupported(f"{self.name}: the ONNX file takes {dtype} but precision "
                              f"{self.loaded.precision} was asked; export a matching graph")
        return dtype

    def _converts_precision(self) -> bool:
        return False

    def _input_shape(self, dims: list) -> tuple[int, ...]:
        w = self.loaded
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
            so = self._session_options(ort, self.loaded.options)
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(tmp) / "placement")
            sess = ort.InferenceSession(self.loaded_path(), so, providers=self._providers())
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

    #: whether a provider of this runner compiles nodes (TensorRT): ONNX Runtime then cannot save its optimized
    #: graph, and its per-node times name the compiled subgraph, not its layers
    compiles_nodes = False

    @property
    def time_source(self) -> str:
        """What clock ONNX Runtime's per-node times come from: the host's, which on a GPU is launch time."""
        return "cpu" if self.device_type == "cpu" else "host_launch"

    def _release(self) -> None:
        """Close the session and its bindings (the input array stays)."""
        for name in ("_io", "_x_ort", "_sess"):
            if hasattr(self, name):
                delattr(self, name)

    def _profiled_session(self, ort, tmp: Path, save_graph: bool):
        so = self._session_options(ort, self.loaded.options)
        so.enable_profiling = True
        so.profile_file_prefix = str(tmp / "layers")
        if save_graph:  # never with a provider that compiles nodes: ORT refuses to serialize them
            so.optimized_model_filepath = str(tmp / "optimized.onnx")
        return ort.InferenceSession(self.loaded_path(), so, providers=self._providers())

    def layer_times(self, iterations: int, info=None) -> dict[str, Any]:
        """Per-node times of ``iterations`` runs of a profiled session alone: the clean session is closed
        first and made again afterwards, so one session (and one intra-op thread pool) is alive at a time
        (two interleaved sessions slow each other's runs ~2x on 2 cores). ONNX Runtime's profiler gives
        ``Node`` events ending ``_kernel_time``; each optimized node is joined to the exported nodes it runs
        (from the optimized graph ORT saves) and to their counts (``info``). With the TensorRT provider the
        graph is not saved and its compiled subgraph is one fused row."""
        onnx = heavy("onnx")
        ort = heavy("onnxruntime")

        info = info or onnx_layers(self.loaded_path(), self.loaded.batch)
        warm, totals, notes = 3, [], []
        save_graph = not self.compiles_nodes
        self._release()
        try:
            with tempfile.TemporaryDirectory(prefix="hwprofile-layers-") as tmp:
                try:
                    sess = self._profiled_session(ort, Path(tmp), save_graph)
                except Exception as exc:  # noqa: BLE001 - saving the optimized graph failed: join by name alone
                    if not save_graph:
                        raise
                    save_graph = False
                    notes.append(f"ONNX Runtime could not save its optimized graph ({_one_line(exc)}): rows are "
                                 "joined to the exported graph by name only")
                    sess = self._profiled_session(ort, Path(tmp), save_graph)
                self._sess = sess
                inp = sess.get_inputs()[0]
                if self._iobinding:
                    self._bind(ort, inp.name, self._feed[inp.name])
                for i in range(warm + iterations):
                    ms = self.time_once()
                    if i >= warm:
                        totals.append(ms)
                events = json.loads(Path(sess.end_profiling()).read_text())
                self._release()
                del sess
                optimized = (onnx.load(str(Path(tmp) / "optimized.onnx"), load_external_data=False)
                             if save_graph else None)
        finally:
            self._release()
            OrtRunner.load(self, self.loaded)  # the clean session again (GPU: the same stream, no new placement)
        per_run, meta, order = _node_times(events, warm, info.element_bytes)
        mean, med, total = typical_times(per_run, totals)
        if optimized is not None:
            rows = _optimized_rows(info, [(n.name, n.op_type) for n in optimized.graph.node], meta, mean, med)
            dropped = map_optimized(info, [(n.name, n.op_type) for n in optimized.graph.node])[1]
        else:
            rows, dropped = _named_rows(info, order, meta, mean, med, self.provider), []
            if self.compiles_nodes:
                notes.append(f"{self.name}: ONNX Runtime's TensorRT provider runs its subgraph as one compiled "
                             "kernel: its layers are not timed one by one here (the trt runner times them)")
        return {"method": "onnxruntime profiler (SessionOptions.enable_profiling) on a session of its own, the "
                          "clean session closed; per node the mean over the typical profiled runs (run total in "
                          "the interquartile range; median_ms: over all)",
                "iterations": iterations, "profiled_run_ms": total, "time_source": self.time_source,
                "element_bytes": info.element_bytes, "rows": rows, "onnx_nodes_not_run": dropped, "notes": notes}

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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def _node_times(events: list, warm: int, element_bytes: int) -> tuple[list[dict[str, float]], dict, list[str]]:
    """Per profiled run, each node's kernel time (ms); per node (op, provider, bytes of its tensors); node names
    in the order they first ran. The first ``warm`` runs are left out."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[warm:]
    per_run: list[dict[str, float]] = [{} for _ in runs]
    meta: dict[str, tuple] = {}
    order: list[str] = []
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        i = next((k for k, r in enumerate(runs) if r["ts"] <= e["ts"] <= r["ts"] + r["dur"]), None)
        if i is None:
            continue
        name = e["name"].removesuffix("_kernel_time")
        per_run[i][name] = per_run[i].get(name, 0.0) + e["dur"] / 1000.0
        if name not in meta:
            order.append(name)
        args = e.get("args") or {}
        shapes = [next(iter(d.values())) for d in (args.get("input_type_shape") or []) +
                  (args.get("output_type_shape") or []) if isinstance(d, dict) and d]
        meta[name] = (args.get("op_name", "?"), args.get("provider", "?"),
                      sum(math.prod(s) for s in shapes) * element_bytes)
    return per_run, meta, order


def _optimized_rows(info, opt_nodes: list[tuple[str, str]], meta: dict, mean: dict, med: dict) -> list[dict]:
    """One row per node of ORT's optimized graph that ran, joined to the exported nodes it runs."""
    groups, _ = map_optimized(info, opt_nodes)
    rows = []
    for name, op in opt_nodes:
        if name not in mean:
            continue
        nodes = groups.get(name) or []
        row = {"name": name, "kind": "overhead" if op in LAYOUT_OPS else "layer", "ort_op": meta[name][0],
               "provider": meta[name][1], "time_ms": mean[name], "median_ms": med[name],
               **(info.counts(nodes) if nodes else {"onnx_nodes": [], "onnx_ops": [], "flops": 0,
                                                    "bytes": None, "op_type": meta[name][0]})}
        if row["kind"] == "overhead":
            row.update(op_type=op, bytes=meta[name][2])
        rows.append(row)
    return rows


def _named_rows(info, order: list[str], meta: dict, mean: dict, med: dict, provider: str) -> list[dict]:
    """Rows joined by node name alone (no optimized graph): a node named after an exported node gets its
    counts; a compiled subgraph (TensorRT) is one fused row without counts."""
    rows = []
    for name in order:
        op, prov, nbytes = meta[name]
        primary = primary_node(name, info)
        row = {"name": name, "kind": "overhead" if op in LAYOUT_OPS else "layer", "ort_op": op, "provider": prov,
               "time_ms": mean[name], "median_ms": med[name]}
        if primary is not None:
            row.update(info.counts([primary]))
        else:
            fused = prov == "TensorrtExecutionProvider"
            row.update(onnx_nodes=[], onnx_ops=[], flops=0, bytes=None if fused else nbytes or None,
                       op_type="TensorRT subgraph" if fused else op)
        rows.append(row)
    return rows
