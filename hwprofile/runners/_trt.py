"""Native TensorRT runner (``trt``): deserialize an engine file and run it with CUDA events.

Device buffers are torch CUDA tensors (``data_ptr()``); inputs are shaped with ``set_input_shape``,
bound with ``set_tensor_address`` and run with ``execute_async_v3`` on a non-default stream. Only
names present in both TensorRT 10.x and 11.x are used (see tests/data/tensorrt/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwprofile import env
from hwprofile._lazy import heavy
from hwprofile.profile import typical_times
from hwprofile.runners._base import (
    COMMON_BOOKKEEPING_SETTINGS,
    COMMON_OBSERVED_SETTINGS,
    COMMON_RESULT_SETTINGS,
    Runner,
    Unsupported,
    cuda_event_ms,
)
from hwprofile.runners._layer_join import trt_nodes
from hwprofile.trackers.memory import MB, entry

_TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32",
                 "INT64": "int64", "INT8": "int8", "UINT8": "uint8", "BOOL": "bool"}


class TrtRunner(Runner):
    name = "trt"
    device_type = "cuda"
    timing_method = "cuda_event"
    kinds = ("engine",)
    input = "engine"  # built from the ONNX export on the device that runs it (runners/prepare.py)
    modes = ("infer",)
    option_names = ("seed",)
    result_settings = {**COMMON_RESULT_SETTINGS, "library": "backend", "tensorrt_version": "backend version",
                       "tensor_shapes": "input size", "tensor_dtypes": "precision",
                       # how the engine was built (exporters.to_tensorrt's record next to the engine file)
                       "engine_build.precision": "precision", "engine_build.strongly_typed": "precision",
                       "engine_build.workspace_mb": "setting"}
    #: engine_build.profiling_verbosity: detailed for engines that time layers; the same network and tactics
    observed_settings = (*COMMON_OBSERVED_SETTINGS, "gpu", "engine_build.profiling_verbosity")
    bookkeeping_settings = (*COMMON_BOOKKEEPING_SETTINGS,
                            "buffers", "stream",  # fixed texts: how it is run
                            # an index into the engine's per-batch profiles, which depends on the sweep's
                            # batch list; the shape that ran is in tensor_shapes
                            "optimization_profile")
    result_fingerprint = ("libraries.tensorrt", "gpu.driver", "gpu.cuda_driver")

    @classmethod
    def preload(cls) -> None:
        heavy("tensorrt")
        heavy("torch")

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        if not env.has_module("tensorrt"):
            return "the tensorrt Python package is not installed"
        problem = env.torch_cuda_problem()
        if problem:
            return f"trt uses torch CUDA tensors as device buffers, but {problem}"
        build = env.torch_build()
        return env.gpu_problem(index) or env.cuda_driver_problem(f"torch {build['version']}", build["cuda"])

    @classmethod
    def version_text(cls) -> str:
        return f"tensorrt {env.tensorrt_version()}"

    def load(self, workload) -> None:
        trt = heavy("tensorrt")
        torch = heavy("torch")

        self.workload = workload
        self._index = int(self.device.partition(":")[2] or 0)
        self._cuda_setup(torch)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        with open(workload.path, "rb") as fh:
            self._engine = self._runtime.deserialize_cuda_engine(fh.read())
        if self._engine is None:
            raise Unsupported(f"trt: {workload.path} is not a TensorRT engine this TensorRT can deserialize")
        self._context = self._engine.create_execution_context()
        self._stream = self._new_stream(torch)
        self._buffers = self._bind(trt, torch)
        self._events = self._new_events(torch)
        self._sync_device(torch)  # the inputs were filled on the default stream; TensorRT runs on another

    # -- the CUDA parts, kept apart so the TensorRT logic can be tested without a GPU ---------
    def _cuda_setup(self, torch) -> None:
        torch.cuda.set_device(self._index)

    def _sync_device(self, torch) -> None:
        torch.cuda.synchronize(self._index)

    def _new_stream(self, torch):
        return torch.cuda.Stream(self._index)

    def _new_events(self, torch):
        return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def _device_tensor(self, torch, shape: tuple, dtype, gen=None):
        if gen is not None:
            return torch.randn(shape, generator=gen).to(f"cuda:{self._index}", dtype)
        return torch.empty(shape, dtype=dtype, device=f"cuda:{self._index}")

    def _gpu_name(self, torch) -> str:
        return torch.cuda.get_device_name(self._index)

    def _tensor_names(self) -> list[str]:
        return [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]

    def _dtype_name(self, trt, name: str) -> str | None:
        """The TensorRT data type of tensor ``name`` (FLOAT, HALF...), None when hwprofile does not know it."""
        dtype = self._engine.get_tensor_dtype(name)
        return next((key for key in _TORCH_DTYPES
                     if hasattr(trt.DataType, key) and dtype == getattr(trt.DataType, key)), None)

    def _torch_dtype(self, trt, torch, name: str):
        key = self._dtype_name(trt, name)
        if key is None:
            raise Unsupported(f"trt: tensor {name} has unsupported dtype {self._engine.get_tensor_dtype(name)}")
        return getattr(torch, _TORCH_DTYPES[key])

    def _bind(self, trt, torch) -> dict[str, Any]:
        w, buffers = self.loaded, {}
        gen = torch.Generator().manual_seed(int(w.options.get("seed", 0)))
        names = self._tensor_names()
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise Unsupported(f"trt: expected one image input, found {len(inputs)}")
        shape = tuple(self._engine.get_tensor_shape(inputs[0]))
        if len(shape) != 4:
            raise Unsupported(f"trt: expected an NCHW image input, got shape {shape}")
        want = (w.batch, shape[1] if shape[1] > 0 else 3, w.resolution, w.resolution)
        if any(d < 0 for d in shape):
            self._select_profile(inputs[0], want)
        if not self._context.set_input_shape(inputs[0], want):
            raise Unsupported(f"trt: the engine does not accept input shape {want} (its profile: {shape})")
        dtype = self._torch_dtype(trt, torch, inputs[0])
        buffers[inputs[0]] = self._device_tensor(torch, want, dtype, gen)
        for name in names:
            if name not in buffers:
                out_shape = tuple(self._context.get_tensor_shape(name))
                buffers[name] = self._device_tensor(torch, out_shape, self._torch_dtype(trt, torch, name))
        for name, tensor in buffers.items():
            self._context.set_tensor_address(name, tensor.data_ptr())
        return buffers

    def _select_profile(self, name: str, want: tuple) -> None:
        """Use the optimization profile whose range holds ``want``: engines are built with one profile
        per batch size (exporters.to_tensorrt), and a new context starts on profile 0."""
        ranges = []
        for index in range(int(self._engine.num_optimization_profiles)):
            low, _, high = (tuple(d) for d in self._engine.get_tensor_profile_shape(name, index))
            ranges.append(f"{low}-{high}")
            if all(a <= x <= b for a, x, b in zip(low, want, high)):
                if index != self._context.active_optimization_profile:
                    if not self._context.set_optimization_profile_async(index, self._stream.cuda_stream):
                        raise Unsupported(f"trt: could not select optimization profile {index}")
                    self._stream.synchronize()
                self.profile_index = index
                return
        raise Unsupported(f"trt: no optimization profile of the engine accepts input shape {want} "
                          f"(profiles: {', '.join(ranges)})")

    def infer(self) -> None:
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError("trt: execute_async_v3 failed")

    def synchronize(self) -> None:
        self._stream.synchronize()

    def time_once(self) -> float:
        return cuda_event_ms(self._stream, self._events, self.infer)

    def layer_times(self, iterations: int, info=None) -> dict[str, Any]:
        """Per-layer times from TensorRT's ``IProfiler`` (``report_layer_time``: device time) over ``iterations``
        runs with the profiler attached, and only then detached: the clean latency is measured before and after,
        never between profiled runs. Each layer is joined to the exported ONNX nodes it contains (``info``, from
        the ONNX graph the engine was built from): by its ``[ONNX Layer: ...]`` metadata in the engine
        inspector's JSON (engines built for layers have detailed profiling verbosity), else by its name.
        Reformat/copy layers are overhead rows."""
        trt = heavy("tensorrt")

        current: dict[str, float] = {}

        # TensorRT's profiler interface, imported when called: mypy cannot see a base class read from a module object
        class _Profiler(trt.IProfiler):  # type: ignore[name-defined]
            def __init__(self):
                trt.IProfiler.__init__(self)

            def report_layer_time(self, layer_name, ms):
                current[str(layer_name)] = current.get(str(layer_name), 0.0) + float(ms)

        metadata, notes = self._layer_metadata(trt)
        for _ in range(3):
            self.infer()
        self.synchronize()
        runs, totals = [], []
        self._context.profiler = _Profiler()
        for i in range(3 + iterations):  # three profiled warm-up runs: TensorRT's first profiled runs are slower
            current = {}
            ms = self.time_once()
            self.synchronize()
            if i >= 3:
                runs.append(current)
                totals.append(ms)
        try:
            self._context.profiler = None
            restored = True
        except (TypeError, ValueError):  # a binding that takes no None: no clean timing after
            restored = False
            notes.append("the profiler could not be detached: no clean latency after the profiled runs")
        mean, med, total = typical_times(runs, totals)
        rows = []
        for name in mean:
            nodes = trt_nodes(name, metadata.get(name), info) if info is not None else []
            row: dict[str, Any] = {"name": name, "kind": "overhead" if nodes is None else "layer",
                                   "time_ms": mean[name], "median_ms": med[name]}
            if nodes:
                row.update(info.counts(nodes))
            else:
                row.update(onnx_nodes=[], onnx_ops=[], flops=0, bytes=None, group=None, depthwise=False,
                           op_type="Reformat" if nodes is None else "unjoined")
            rows.append(row)
        return {"method": "TensorRT IProfiler (report_layer_time) on the timed context, attached for the profiled "
                          "runs only; per layer the mean over the typical profiled runs (total in the "
                          "interquartile range)",
                "iterations": iterations, "profiled_run_ms": total, "time_source": "gpu", "restored": restored,
                "element_bytes": info.element_bytes if info is not None else None, "rows": rows, "notes": notes}

    def _layer_metadata(self, trt) -> tuple[dict[str, str], list[str]]:
        """Layer name -> the engine inspector's metadata (``[ONNX Layer: x]`` with detailed verbosity)."""
        metadata = {}
        try:
            inspector = self._engine.create_engine_inspector()
            doc = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
            for layer in doc.get("Layers", []):
                if isinstance(layer, dict):
                    metadata[str(layer.get("Name"))] = str(layer.get("Metadata") or "")
        except Exception:  # noqa: BLE001 - names alone still join
            metadata = {}
        if not any("[ONNX Layer:" in m for m in metadata.values()):
            return metadata, ["the engine holds no ONNX layer metadata (built without detailed profiling "
                              "verbosity): layers are joined to ONNX nodes by their names"]
        return metadata, []

    def memory(self) -> dict[str, dict]:
        size = getattr(self._engine, "device_memory_size_v2", None)
        if size is None:
            return {}
        return {"trt_engine_device_memory_mb": entry(size / MB, "ICudaEngine.device_memory_size_v2: "
                                                     "activation/scratch memory of one execution context")}

    def settings(self) -> dict[str, Any]:
        trt = heavy("tensorrt")
        torch = heavy("torch")

        names = self._tensor_names()
        shapes = {n: list(self._context.get_tensor_shape(n)) for n in names}
        build = self._engine_build()
        return {"library": "tensorrt", "tensorrt_version": trt.__version__, "device": self.device,
                "gpu": self._gpu_name(torch), "tensor_shapes": shapes,
                "tensor_dtypes": {n: self._dtype_name(trt, n) for n in names},
                "buffers": "torch CUDA tensors", "stream": "non-default torch.cuda.Stream",
                "optimization_profile": getattr(self, "profile_index", None),
                **({"engine_build": build} if build else {})}

    def _engine_build(self) -> dict | None:
        """How the engine was built, from the record exporters.to_tensorrt writes next to it (``<key>.json``
        beside ``<key>.engine``); None for an engine made elsewhere."""
        try:
            data = json.loads(Path(self.loaded_path()).with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        return {**{k: data.get(k) for k in ("precision", "strongly_typed", "workspace_mb")},
                # records written before the field existed were built with TensorRT's default
                "profiling_verbosity": data.get("profiling_verbosity", "layer_names_only")}

    def close(self) -> None:
        for name in ("_buffers", "_context", "_engine", "_runtime", "_stream"):
            if hasattr(self, name):
                delattr(self, name)
