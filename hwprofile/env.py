"""Cheap probes of the environment: installed packages, GPUs, provider libraries.

Nothing here imports torch, onnxruntime or tensorrt: packages are found with
``importlib.util.find_spec`` and ``importlib.metadata``, GPUs with NVML (nvidia-ml-py) when it is
installed, else with the driver's ``/proc`` entries.
"""

from __future__ import annotations

import ctypes.util
import functools
import importlib.metadata as metadata
import importlib.util
import os
import re
import subprocess
from pathlib import Path

from hwprofile._lazy import heavy, not_installed

ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu")


def has_module(name: str) -> bool:
    """Whether top-level module ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def dist_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def module_dir(name: str) -> Path | None:
    """The directory of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def torch_build() -> dict:
    """torch's version and the CUDA version it was built for, read from ``torch/version.py``."""
    folder = module_dir("torch")
    if folder is None:
        return {"version": None, "cuda": None}
    text = (folder / "version.py").read_text() if (folder / "version.py").exists() else ""
    version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", text, re.M)
    cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)", text, re.M)
    return {"version": version.group(1) if version else dist_version("torch"),
            "cuda": cuda.group(1) if cuda else None}


def ort_distributions() -> list[str]:
    """The onnxruntime distributions installed (two in one folder overwrite each other's files)."""
    return [d for d in ORT_DISTRIBUTIONS if dist_version(d) is not None]


def _dist_folder(name: str) -> Path | None:
    """The folder that holds distribution ``name``'s ``onnxruntime`` package (its site directory)."""
    try:
        return Path(str(metadata.distribution(name).locate_file("onnxruntime"))).resolve()
    except (metadata.PackageNotFoundError, OSError, TypeError):
        return None


def ort_active_distribution() -> str | None:
    """The onnxruntime distribution ``import onnxruntime`` loads: with onnxruntime-gpu installed in a folder
    ahead on the path (``pip install --target DIR`` plus PYTHONPATH, as scripts/gpu-validate.sh does on
    the GPU image, which ships the CPU build), that one; None when it cannot be told."""
    found = module_dir("onnxruntime")
    if found is None or ort_distributions_clash():
        return None
    return next((d for d in ort_distributions() if _dist_folder(d) == found.resolve()), None)


def ort_distributions_clash() -> bool:
    """Both onnxruntime distributions installed into one folder: they overwrite each other's files."""
    folders = [_dist_folder(d) for d in ort_distributions()]
    return len(folders) > 1 and (None in folders or len(set(folders)) < len(folders))


def ort_version() -> str | None:
    active = ort_active_distribution()
    if active is not None:
        return dist_version(active)
    for dist in ORT_DISTRIBUTIONS[::-1]:
        if (v := dist_version(dist)) is not None:
            return v
    return None


def ort_has_provider_lib(short: str) -> bool:
    """Whether onnxruntime ships ``libonnxruntime_providers_<short>.so`` (cuda, tensorrt)."""
    folder = module_dir("onnxruntime")
    return folder is not None and any((folder / "capi").glob(f"libonnxruntime_providers_{short}.*"))


def tensorrt_version() -> str | None:
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt_libs",
                 "tensorrt-cu12-libs", "tensorrt-cu13-libs"):
        if (v := dist_version(dist)) is not None:
            return v
    return None


def ort_tensorrt_needs() -> str | None:
    """The libnvinfer soname (e.g. ``libnvinfer.so.10``) onnxruntime's TensorRT provider links, read
    from the library's own bytes; None when there is no such provider or no name in it."""
    folder = module_dir("onnxruntime")
    libs = sorted((folder / "capi").glob("libonnxruntime_providers_tensorrt.*")) if folder is not None else []
    if not libs:
        return None
    try:
        match = re.search(rb"libnvinfer\.so\.(\d+)", libs[0].read_bytes())
    except OSError:
        return None
    return f"libnvinfer.so.{match.group(1).decode()}" if match else None


def ort_tensorrt_major() -> int | None:
    """The TensorRT major version onnxruntime's TensorRT provider links (from its libnvinfer soname)."""
    needs = ort_tensorrt_needs()
    tail = needs.rsplit(".", 1)[-1] if needs else ""
    return int(tail) if tail.isdigit() else None


def library_findable(soname: str) -> bool:
    """Whether the dynamic loader could find ``soname``: the tensorrt wheels' folders, LD_LIBRARY_PATH,
    the usual system folders and the ldconfig cache (nothing is loaded)."""
    folders = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    for mod in ("tensorrt_libs", "tensorrt"):
        if (d := module_dir(mod)) is not None:
            folders.append(d)
    folders += [Path(p) for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/local/lib",
                                  "/usr/lib", "/usr/local/cuda/lib64", "/usr/local/tensorrt/lib")]
    if any((f / soname).exists() for f in folders):
        return True
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return f"{soname} " in out


def has_tensorrt_libs() -> bool:
    """libnvinfer is reachable: the tensorrt wheel's libs or a system install."""
    if has_module("tensorrt_libs") or has_module("tensorrt"):
        return True
    return ctypes.util.find_library("nvinfer") is not None


def _visible_limit() -> int | None:
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is None:
        return None
    items = [t for t in text.split(",") if t.strip()]
    if not items or items[0].strip() in ("-1", "none", "NoDevFiles"):
        return 0
    return len(items)


def physical_gpu(cuda_index: int) -> int | str:
    """Which physical GPU CUDA device ``cuda_index`` is, as NVML knows it: an NVML index, or a UUID.

    NVML counts every GPU and ignores CUDA_VISIBLE_DEVICES; CUDA counts only the visible ones. With
    ``CUDA_VISIBLE_DEVICES=2`` (as SLURM sets it), ``cuda:0`` is NVML's GPU 2. Numeric entries are
    CUDA-order indices: they match NVML's PCI order when CUDA_DEVICE_ORDER=PCI_BUS_ID (or the GPUs
    are alike); UUID entries (``GPU-...``, ``MIG-...``) are exact.
    """
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    entries = [t.strip() for t in (text or "").split(",") if t.strip()]
    if entries and cuda_index < len(entries):
        entry = entries[cuda_index]
        if entry.isdigit():
            return int(entry)
        if entry.startswith(("GPU-", "MIG-")):
            return entry
    return cuda_index


def nvml_handle(nvml, cuda_index: int):
    """The NVML handle of CUDA device ``cuda_index`` (see :func:`physical_gpu`)."""
    which = physical_gpu(cuda_index)
    if isinstance(which, str):
        return nvml.nvmlDeviceGetHandleByUUID(which)
    return nvml.nvmlDeviceGetHandleByIndex(which)


#: NVML's compute-process queries, newest first: ``_v3`` needs a driver of 2021 or later (R470+); an older
#: driver lacks the symbol and nvidia-ml-py raises NVMLError_FunctionNotFound, so the next one is tried.
COMPUTE_PROCESS_QUERIES = ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2",
                           "nvmlDeviceGetComputeRunningProcesses")
NVML_ERROR_FUNCTION_NOT_FOUND = 13  # nvmlReturn_t: the driver's library lacks the function


def nvml_compute_processes(nvml, handle) -> list | None:
    """The processes holding a compute context on the GPU of ``handle`` (objects with ``pid`` and
    ``usedGpuMemory``, which may be None in containers), through the newest query the binding and the
    driver both have; None when none answers (not supported, no permission, ...)."""
    for name in COMPUTE_PROCESS_QUERIES:
        query = getattr(nvml, name, None)
        if query is None:
            continue
        try:
            return list(query(handle))
        except Exception as exc:  # NVMLError: a missing driver symbol falls back, anything else is an answer
            if getattr(exc, "value", None) == NVML_ERROR_FUNCTION_NOT_FOUND:
                continue
            return None
    return None


@functools.lru_cache(maxsize=1)
def _physical_gpus() -> tuple[str, ...]:
    names = nvml_gpu_names()
    if names is not None:
        return tuple(names)
    folder = Path("/proc/driver/nvidia/gpus")
    if folder.is_dir():
        return tuple(_proc_gpu_name(p) for p in sorted(folder.iterdir()))
    return ()


def _proc_gpu_name(path: Path) -> str:
    info = path / "information"
    if info.exists():
        match = re.search(r"^Model:\s*(.+)$", info.read_text(), re.M)
        if match:
            return match.group(1).strip()
    return "NVIDIA GPU"


def nvml_gpu_names() -> list[str] | None:
    """GPU names from NVML, or None when NVML (nvidia-ml-py or the driver) is missing."""
    return nvml_query(lambda nvml: [_text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i)))
                                    for i in range(nvml.nvmlDeviceGetCount())])


def nvml_query(read):
    """``read(pynvml)`` between ``nvmlInit`` and ``nvmlShutdown``; None when NVML (nvidia-ml-py or the driver)
    is missing or the query fails (NVMLError_LibraryNotFound, DriverNotLoaded, ...)."""
    if not has_module("pynvml"):
        return None
    try:
        pynvml = heavy("pynvml")
        pynvml.nvmlInit()
        try:
            return read(pynvml)
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_names() -> list[str]:
    """Names of the CUDA GPUs this process may use, in CUDA's order (honours CUDA_VISIBLE_DEVICES)."""
    names = list(_physical_gpus())
    limit = _visible_limit()
    if limit is None:
        return names
    picked = [physical_gpu(i) for i in range(limit)]
    indices = [w for w in picked if isinstance(w, int) and w < len(names)]
    if len(indices) == len(picked):
        return [names[w] for w in indices]
    return names[:limit]  # UUID entries: the count is right, the names may not be in order


def gpu_count() -> int:
    return len(gpu_names())


def parse_device(device: str) -> tuple[str, int | None]:
    """``"cpu"`` -> ("cpu", None); ``"cuda"``/``"cuda:N"`` -> ("cuda", N); else ValueError."""
    text = str(device).strip().lower()
    if text == "cpu":
        return "cpu", None
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not match:
        raise ValueError(text)
    return "cuda", int(match.group(1) or 0)


def gpu_problem(index: int | None) -> str | None:
    """Why CUDA device ``index`` cannot be used here, or None."""
    count = gpu_count()
    if count == 0:
        return "no CUDA GPU is visible"
    if index is not None and index >= count:
        return f"cuda:{index} does not exist ({count} GPU(s) visible)"
    return None


def torch_cuda_problem() -> str | None:
    """Why torch cannot drive a CUDA GPU here (not installed, or a CPU-only build), or None."""
    build = torch_build()
    if build["version"] is None:
        return not_installed("torch")
    if build["cuda"] is None:
        return f"torch {build['version']} is a CPU-only build"
    return None


# ------------------------------------------------------------------ CUDA versions and the driver

def ort_cuda_version() -> str | None:
    """The CUDA version onnxruntime-gpu was built for (``cuda_version`` in its build_and_package_info.py)."""
    folder = module_dir("onnxruntime")
    info = folder / "capi" / "build_and_package_info.py" if folder is not None else None
    try:
        text = info.read_text() if info is not None and info.is_file() else ""
    except OSError:
        return None
    match = re.search(r"^cuda_version\s*=\s*['\"]([^'\"]+)", text, re.M)
    return match.group(1) if match else None


@functools.lru_cache(maxsize=1)
def nvml_cuda_driver_version() -> tuple[int, int] | None:
    """The newest CUDA version the installed NVIDIA driver supports, from NVML; None when unknown."""
    value = nvml_query(lambda nvml: int((getattr(nvml, "nvmlSystemGetCudaDriverVersion_v2", None)
                                         or nvml.nvmlSystemGetCudaDriverVersion)()))
    return None if value is None else (value // 1000, (value % 1000) // 10)


def cuda_major(version: str | None) -> int | None:
    head = str(version or "").split(".")[0]
    return int(head) if head.isdigit() else None


def cuda_driver_problem(library: str, built_for: str | None) -> str | None:
    """Why the driver cannot run ``library`` built for CUDA ``built_for`` (its major is newer than the
    driver's), or None (also when either version is unknown)."""
    driver, major = nvml_cuda_driver_version(), cuda_major(built_for)
    if driver is None or major is None or driver[0] >= major:
        return None
    return (f"{library} is built for CUDA {built_for}, but the NVIDIA driver supports CUDA up to "
            f"{driver[0]}.{driver[1]}: update the driver, or install a CUDA {driver[0]} build")


def torch_ort_cuda_problem() -> str | None:
    """torch and onnxruntime-gpu built for different CUDA majors, which cannot load in one process (the
    ONNX Runtime GPU runners load torch for its CUDA streams), or None."""
    torch_cuda, ort_cuda = torch_build()["cuda"], ort_cuda_version()
    a, b = cuda_major(torch_cuda), cuda_major(ort_cuda)
    if a is None or b is None or a == b:
        return None
    return (f"torch {torch_build()['version']} is built for CUDA {torch_cuda} and onnxruntime-gpu {ort_version()} "
            f"for CUDA {ort_cuda}; the ONNX Runtime GPU runners load both in one process, which needs one CUDA "
            "major: install builds for the same CUDA major")
