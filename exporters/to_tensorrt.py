"""ONNX -> TensorRT engine, with API calls present in both TensorRT 10.x and 11.x.

Version differences are handled by feature tests, never by version numbers: fp16 uses
``BuilderFlag.FP16`` where it still exists (10.x) and otherwise needs an fp16 ONNX graph,
built as a strongly typed network (11.x has no weak typing); engine memory is read from
``device_memory_size_v2`` with a fallback. Engines are cached by (ONNX sha256, precision,
profiles, workspace, TensorRT version, GPU name). TensorRT is imported only when building.
This path has been exercised only against the strict stand-in in ``tests/fake_tensorrt.py``,
not on real TensorRT.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import Any

from exporters.artifacts import (
    EngineArtifact,
    OnnxArtifact,
    cache_root,
    cached_artifact,
    key_of,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
)
from hwprofile._lazy import heavy
from hwprofile.errors import ConfigError, InputFileError, RunnerUnavailable
from hwprofile.graph import load_model

INSTALL_HINT = ("TensorRT is not installed: run `pip install tensorrt-cu13` (or tensorrt-cu12) on a machine "
                "with an NVIDIA GPU that reaches NVIDIA's package index (pypi.nvidia.com); PyPI alone serves "
                "only stubs")
PRECISIONS = ("fp32", "fp16")
PROFILE_MODES = ("per-batch", "range")
#: ``ProfilingVerbosity`` of the build: TensorRT's default, or detailed (the engine inspector then names the ONNX
#: nodes of every layer, which per-layer times need)
VERBOSITIES = ("layer_names_only", "detailed")


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`RunnerUnavailable` saying how to install it."""
    try:
        trt = heavy("tensorrt")
    except (ImportError, OSError) as exc:
        raise RunnerUnavailable(f"{INSTALL_HINT} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    major = str(getattr(trt, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < 10:
        raise RunnerUnavailable(f"TensorRT {trt.__version__} is too old: hwprofile needs TensorRT 10.x or 11.x")
    return trt


def to_tensorrt(onnx_artifact: OnnxArtifact | str | os.PathLike, *, precision: str = "fp32",
                batch_sizes: Any = (1,), workspace_mb: int = 1024, cache_dir: str | os.PathLike | None = None,
                timing_cache: str | os.PathLike | None = None, profiles: str = "per-batch",
                profiling_verbosity: str = "layer_names_only") -> EngineArtifact:
    """Build (or reuse) a TensorRT engine for an exported ONNX graph.

    ``batch_sizes`` are the batch sizes the engine must accept: with ``profiles="per-batch"``
    each gets its own optimization profile (min = opt = max), with ``"range"`` one profile spans
    them (opt = the largest). ``workspace_mb`` caps the builder's scratch memory. The engine is
    cached under ``cache_dir`` (default ``$HWPROFILE_CACHE/tensorrt``); the timing cache file
    (default: one per TensorRT version and GPU in that folder) is loaded and saved on every build.
    ``profiling_verbosity="detailed"`` builds an engine whose inspector names each layer's ONNX nodes (for
    per-layer times), under a cache key of its own.
    """
    art = _as_artifact(onnx_artifact)
    precision, batches, workspace_mb = _check_args(art, precision, batch_sizes, workspace_mb, profiles)
    if profiling_verbosity not in VERBOSITIES:
        raise ConfigError(f"profiling_verbosity must be one of {', '.join(VERBOSITIES)}, got {profiling_verbosity!r}")
    trt = import_tensorrt()
    if precision == "fp16" and art.dtype == "float32" and not hasattr(trt.BuilderFlag, "FP16"):
        raise ConfigError(f"TensorRT {trt.__version__} is strongly typed: an fp16 engine needs an fp16 ONNX "
                          "graph (to_onnx(..., fp16=True) / hwprofile export --fp16)")
    gpu = _gpu_name()
    shapes = _profile_shapes(art, batches, profiles)
    root = cache_root("tensorrt", cache_dir)
    detailed = {"profiling_verbosity": profiling_verbosity} if profiling_verbosity != VERBOSITIES[0] else {}
    key = key_of({"onnx": art.sha256, "precision": precision, "profiles": shapes, "workspace_mb": workspace_mb,
                  "tensorrt": trt.__version__, "gpu": gpu, **detailed})
    hit = _cache_hit(root, key)
    if hit is not None:
        return hit
    tc = Path(timing_cache) if timing_cache else root / f"timing-{_slug(trt.__version__)}-{_slug(gpu)}.cache"
    start = time.perf_counter()
    plan, strongly = _build(trt, art, precision, shapes, workspace_mb, tc, profiling_verbosity)
    build_s = time.perf_counter() - start
    path = root / f"{key}.engine"
    write_bytes_atomic(path, plan)
    engine = EngineArtifact(
        path=str(path), sha256=sha256_file(path), onnx_sha256=art.sha256, tensorrt_version=str(trt.__version__),
        precision=precision, input_name=art.input_name, profiles=tuple(shapes),
        device_memory_bytes=_device_memory(trt, plan), gpu_name=gpu, workspace_mb=workspace_mb,
        strongly_typed=strongly, timing_cache=str(tc), build_s=round(build_s, 3), cache_key=key,
        profiling_verbosity=profiling_verbosity)
    write_json_atomic(root / f"{key}.json", engine.to_dict())
    return engine


# ------------------------------------------- checks ------------------------------------------- #

def _as_artifact(obj: Any) -> OnnxArtifact:
    if isinstance(obj, OnnxArtifact):
        if not Path(obj.path).is_file():
            raise InputFileError(f"{obj.path}: the ONNX file of this artifact is missing")
        return obj
    return describe_onnx(obj)


def describe_onnx(path: str | os.PathLike) -> OnnxArtifact:
    """A minimal artifact for an ONNX file made elsewhere (input name, shape and dtype read from it)."""
    model, name, _ = load_model(path)
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputFileError(f"{path}: expected one input, found {len(inputs)}")
    tt = inputs[0].type.tensor_type
    shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "batch") for d in tt.shape.dim)
    dtype = {1: "float32", 10: "float16"}.get(tt.elem_type)
    if dtype is None:
        raise InputFileError(f"{path}: input element type {tt.elem_type} is neither float32 nor float16")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxArtifact(path=str(path), sha256=sha256_file(path), opset=opset, input_name=inputs[0].name,
                        input_shape=shape, dtype=dtype, external_data=None, external_data_sha256=None,
                        versions={}, folded_bn=(), folded_bn_channels=0, verification=None, export_s=0.0,
                        model=name, spec=None)


def _check_args(art: OnnxArtifact, precision: str, batch_sizes: Any, workspace_mb: Any,
                profiles: str) -> tuple[str, list[int], int]:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if profiles not in PROFILE_MODES:
        raise ConfigError(f"profiles must be one of {', '.join(PROFILE_MODES)}, got {profiles!r}")
    sizes = [batch_sizes] if isinstance(batch_sizes, int) else list(batch_sizes or ())
    if not sizes or any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in sizes):
        raise ConfigError(f"batch_sizes must be positive integers, got {batch_sizes!r}")
    if not isinstance(workspace_mb, int) or workspace_mb < 1:
        raise ConfigError(f"workspace_mb must be a positive integer, got {workspace_mb!r}")
    fixed = art.input_shape[0]
    if isinstance(fixed, int) and any(b != fixed for b in sizes):
        raise ConfigError(f"{art.path} has a fixed batch of {fixed}; export it with batch='dynamic' "
                          f"to build for batch sizes {sorted(set(sizes))}")
    if precision == "fp32" and art.dtype != "float32":
        raise ConfigError(f"{art.path} is an {art.dtype} graph; an fp32 engine needs an fp32 export")
    return precision, sorted(set(sizes)), workspace_mb


def _profile_shapes(art: OnnxArtifact, batches: list[int], mode: str) -> list[dict]:
    symbolic = [d for d in art.input_shape[1:] if not isinstance(d, int)]
    if symbolic:
        raise ConfigError(f"{art.path}: input {art.input_name} has symbolic non-batch dimensions "
                          f"{art.input_shape}; engines are built per batch size at a fixed channel count and "
                          "resolution: export with a fixed resolution (hwprofile export does)")
    rest = list(art.input_shape[1:])

    def prof(i: int, lo: int, opt: int, hi: int) -> dict:
        return {"index": i, "min": [lo, *rest], "opt": [opt, *rest], "max": [hi, *rest]}

    if mode == "range":
        return [prof(0, batches[0], batches[-1], batches[-1])]
    return [prof(i, b, b, b) for i, b in enumerate(batches)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown"


def _gpu_name() -> str:
    """The name of the current CUDA device, which the engine is built for (torch, else NVML), or ``unknown-gpu``."""
    try:
        torch = heavy("torch")

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.cuda.current_device())
    except Exception:  # noqa: BLE001 - any failure just means "not known"
        pass
    try:
        pynvml = heavy("pynvml")

        pynvml.nvmlInit()
        name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001
        return "unknown-gpu"


def _cache_hit(root: Path, key: str) -> EngineArtifact | None:
    engine = cached_artifact(root, key, EngineArtifact)
    return None if engine is None else dataclasses.replace(engine, cache_hit=True)


# ------------------------------------------- build ------------------------------------------- #

def _build(trt: Any, art: OnnxArtifact, precision: str, shapes: list[dict], workspace_mb: int,
           timing_cache: Path, profiling_verbosity: str = VERBOSITIES[0]) -> tuple[bytes, bool]:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    weak = hasattr(trt.BuilderFlag, "FP16")  # 11.x removed weak typing: every network is strongly typed
    strongly = art.dtype == "float16" or not weak
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if art.dtype == "float16" else 0
    network = builder.create_network(flags)
    _parse(trt, network, logger, art)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16" and not strongly:  # 10.x weak typing; checked to exist in to_tensorrt
        config.set_flag(trt.BuilderFlag.FP16)
    if profiling_verbosity == "detailed":  # the inspector then gives every layer's [ONNX Layer: ...] nodes
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    if not config.set_timing_cache(cache, ignore_mismatch=False):  # written by another GPU or TensorRT: start anew
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    if isinstance(art.input_shape[0], str):
        for p in shapes:
            profile = builder.create_optimization_profile()
            profile.set_shape(art.input_name, tuple(p["min"]), tuple(p["opt"]), tuple(p["max"]))
            config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RunnerUnavailable(f"TensorRT {trt.__version__} could not build an engine for {art.path} "
                                f"({precision}, batch {[p['max'][0] for p in shapes]}); see its log above")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan)), strongly


def _parse(trt: Any, network: Any, logger: Any, art: OnnxArtifact) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(art.path)):
        errors = [str(parser.get_error(i)).strip() for i in range(parser.num_errors)]
        detail = "; ".join(e.replace("\n", " ") for e in errors[:3]) or "no details"
        raise RunnerUnavailable(f"TensorRT {trt.__version__} cannot parse {art.path}: {detail}")


def _device_memory(trt: Any, plan: bytes) -> int | None:
    """Scratch/activation memory per execution context (``device_memory_size_v2``, else v1)."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise RunnerUnavailable(f"TensorRT {trt.__version__} could not deserialize the engine it just built")
    size = getattr(engine, "device_memory_size_v2", None)
    if size is None:
        size = getattr(engine, "device_memory_size", None)
    return None if size is None else int(size)
