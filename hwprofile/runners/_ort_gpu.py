"""ONNX Runtime on the GPU: ``ort:cuda`` and ``ort:tensorrt`` (:mod:`hwprofile.runners._ort` holds
the session, timing and settings they share with ``ort:cpu``).

Inputs and outputs are bound on the device (IOBinding) on the runner's own CUDA stream, timed with
CUDA events when torch has CUDA. The first active provider must be the one asked for: nodes a provider
cannot take fall back to CPU one by one, which ``node_placement`` records. The TensorRT provider
caches its engines (``trt_engine_cache_enable``) under ``trt_cache_dir``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from hwprofile import env
from hwprofile._lazy import heavy
from hwprofile.runners._base import Unsupported, cuda_event_ms
from hwprofile.runners._ort import OrtRunner


class _OrtGpuRunner(OrtRunner):
    """CUDA and TensorRT providers: device-resident IOBinding, CUDA events when torch has CUDA."""

    device_type = "cuda"
    #: CUDA and cuDNN come from torch's or the nvidia wheels (preload_dlls), the driver from the machine
    result_fingerprint: ClassVar[tuple[str, ...]] = (*OrtRunner.result_fingerprint, "gpu.driver", "gpu.cuda_driver",
                                                     "gpu.cuda_runtime", "gpu.cudnn", "gpu.cudnn_wheel")

    @classmethod
    def preload(cls) -> None:
        if env.torch_cuda_problem() is None:
            heavy("torch")
        ort = heavy("onnxruntime")

        if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from torch or the nvidia wheels (onnxruntime-gpu >= 1.21)
            try:
                ort.preload_dlls()
            except Exception:  # session creation will report what is missing
                pass

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        if not env.has_module("onnxruntime") or not env.ort_has_provider_lib("cuda"):
            return "onnxruntime-gpu is not installed"
        return cls.cuda_problem(index)

    @classmethod
    def cuda_problem(cls, index: int | None) -> str | None:
        """No such GPU, a driver too old for onnxruntime-gpu's CUDA, or torch on another CUDA major."""
        return (env.gpu_problem(index)
                or env.cuda_driver_problem(f"onnxruntime-gpu {env.ort_version()}", env.ort_cuda_version())
                or env.torch_ort_cuda_problem())

    @property
    def index(self) -> int:
        return int(self.device.partition(":")[2] or 0)

    def load(self, workload) -> None:
        # where the nodes run (the provider list alone hides nodes that fall back to CPU), from a
        # session closed before the timed one is created, so the two never hold memory together;
        # the stream comes first: the provider options of both sessions name it
        self.workload = workload
        self._stream = self._make_stream()
        try:
            self._placement = self.node_placement()
        except Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 - a diagnostic; the measurement itself goes on
            self._placement = {"unknown": f"{type(exc).__name__}: {exc}"[:200]}
        super().load(workload)

    def _ort_device(self) -> tuple[str, int]:
        return "cuda", self.index

    def _make_stream(self):
        """A non-default torch CUDA stream handed to ORT, so CUDA events can bracket each run."""
        self.preload()
        if env.torch_cuda_problem() is not None:
            self.timing_method = "perf_counter_ns"
            return None
        torch = heavy("torch")

        torch.cuda.set_device(self.index)
        stream = torch.cuda.Stream(self.index)
        self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        self.timing_method = "cuda_event"
        return stream

    def _stream_options(self, provider: str) -> dict:
        """Run on our stream. The TensorRT provider's Python option parser knows only
        ``user_compute_stream`` (it implies the flag) and rejects any other key, which would make ORT
        drop the provider; the CUDA provider also takes the explicit flag."""
        if self._stream is None:
            return {}
        stream = {"user_compute_stream": str(self._stream.cuda_stream)}
        return stream if provider == "TensorrtExecutionProvider" else {"has_user_compute_stream": "1", **stream}

    def _cuda_options(self) -> dict:
        return {"device_id": str(self.index), "arena_extend_strategy": "kSameAsRequested",
                **self._stream_options("CUDAExecutionProvider")}

    def time_once(self) -> float:
        if self._stream is None:
            return super().time_once()
        return cuda_event_ms(self._stream, self._events, self.infer)

    def synchronize(self) -> None:
        if self._stream is not None:
            self._stream.synchronize()


class OrtCudaRunner(_OrtGpuRunner):
    name = "ort:cuda"
    provider = "CUDAExecutionProvider"

    def _providers(self) -> list:
        return [(self.provider, self._cuda_options()), "CPUExecutionProvider"]


class OrtTensorrtRunner(_OrtGpuRunner):
    name = "ort:tensorrt"
    provider = "TensorrtExecutionProvider"
    load_estimate_s = 30.0  # the provider builds its engine in the session (cached per shape in trt_cache_dir)
    compiles_nodes = True  # its subgraph is a compiled node: no optimized graph to save, one fused row
    result_fingerprint = (*_OrtGpuRunner.result_fingerprint, "libraries.tensorrt")

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        if not env.has_module("onnxruntime") or not env.ort_has_provider_lib("cuda"):
            return "onnxruntime-gpu is not installed"
        if not env.ort_has_provider_lib("tensorrt"):
            return "this onnxruntime build has no TensorRT execution provider"
        if not env.has_tensorrt_libs():
            return "TensorRT (libnvinfer) is not installed"
        needs = env.ort_tensorrt_needs()
        if needs and not env.library_findable(needs):
            have = env.tensorrt_version()
            return (f"this onnxruntime's TensorRT provider links {needs}, which the loader cannot find"
                    + (f" (TensorRT {have} is installed)" if have else ""))
        return cls.cuda_problem(index)

    @staticmethod
    def weakly_typed() -> bool:
        """Whether the provider's TensorRT still has weak typing (10.x: ``trt_fp16_enable`` turns an fp32
        graph into an fp16 engine). TensorRT 11 removed it: an fp16 engine needs an fp16 graph, and
        ``trt_fp16_enable`` on an fp32 graph would build an fp32 engine. Read from the libnvinfer
        soname the provider links; unknown counts as strongly typed (never label fp16 what ran fp32)."""
        major = env.ort_tensorrt_major()
        return major is not None and major < 11

    def _converts_precision(self) -> bool:
        return self.weakly_typed()  # 10.x: fp32 graph + trt_fp16_enable builds an fp16 engine

    def cache_dir(self) -> str:
        base = self.loaded.options.get("trt_cache_dir") or os.path.join(
            os.path.dirname(os.path.abspath(self.loaded_path())), ".ort_trt_cache")
        os.makedirs(base, exist_ok=True)
        return base

    def _providers(self) -> list:
        cache = self.cache_dir()
        fp16 = self.loaded.precision == "fp16" and self.weakly_typed()  # 11.x: the fp16 graph is fp16
        trt = {"device_id": str(self.index), "trt_engine_cache_enable": "True", "trt_engine_cache_path": cache,
               "trt_timing_cache_enable": "True", "trt_timing_cache_path": cache,
               "trt_fp16_enable": "True" if fp16 else "False", **self._stream_options(self.provider)}
        return [(self.provider, trt), (OrtCudaRunner.provider, self._cuda_options()), "CPUExecutionProvider"]

    def settings(self) -> dict[str, Any]:
        major = env.ort_tensorrt_major()
        return {**super().settings(), "tensorrt_major": major,
                "tensorrt_typing": "weak" if self.weakly_typed() else "strong" if major else "unknown (strong assumed)"}
