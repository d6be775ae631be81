"""Device fingerprints: what a result was measured on, and a short stable id for it.

CPU: model, cores, RAM, OS, Python and library versions (read from package metadata, no heavy
imports). GPU: name, UUID, driver, CUDA driver version, memory, clocks, power limit, ECC and
persistence mode via NVML where present, and the CUDA/cuDNN versions torch was built with.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

import psutil

from hwprofile import env
from hwprofile._lazy import heavy
from hwprofile._version import __version__
from hwprofile.runners import resolve_device
from hwprofile.trackers.memory import total_ram_mb


def _cpuinfo() -> dict:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "vendor_id", "flags") and key not in info:
                info[key] = value.strip()
    except OSError:
        pass
    return info


def cpu_info() -> dict:
    raw = _cpuinfo()
    flags = set(raw.get("flags", "").split())
    freq = psutil.cpu_freq()
    return {"model": raw.get("model name") or platform.processor() or platform.machine(),
            "vendor": raw.get("vendor_id"), "arch": platform.machine(),
            "logical_cores": os.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "usable_cores": len(os.sched_getaffinity(0)),
            "max_mhz": round(freq.max, 1) if freq and freq.max else None,
            "isa": sorted(f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile",
                                                     "amx_bf16", "fma", "neon", "asimd"))}


def library_versions() -> dict:
    build = env.torch_build()
    return {"hwprofile": __version__, "torch": build["version"], "torch_cuda": build["cuda"],
            "onnx": env.dist_version("onnx"), "onnxruntime": env.ort_version(),
            "onnxruntime_distributions": env.ort_distributions(), "tensorrt": env.tensorrt_version(),
            "numpy": env.dist_version("numpy"), "nvidia_ml_py": env.dist_version("nvidia-ml-py")}


def _nvml_value(fn, *args):
    try:
        value = fn(*args)
    except Exception:  # NVMLError_NotSupported and friends
        return None
    return value.decode() if isinstance(value, bytes) else value


def _cuda_text(version: int | None) -> str | None:
    return None if not version else f"{version // 1000}.{version % 1000 // 10}"


def nvml_gpu(index: int) -> dict:
    """NVML facts about CUDA device ``index`` (raises when NVML is unusable)."""
    n = heavy("pynvml")

    n.nvmlInit()
    try:
        h = env.nvml_handle(n, index)  # NVML ignores CUDA_VISIBLE_DEVICES
        ecc = _nvml_value(n.nvmlDeviceGetEccMode, h)
        mem = _nvml_value(n.nvmlDeviceGetMemoryInfo, h)
        limit = _nvml_value(n.nvmlDeviceGetPowerManagementLimit, h)
        cc = _nvml_value(n.nvmlDeviceGetCudaComputeCapability, h)
        return {
            "name": _nvml_value(n.nvmlDeviceGetName, h), "uuid": _nvml_value(n.nvmlDeviceGetUUID, h),
            "driver": _nvml_value(n.nvmlSystemGetDriverVersion),
            "cuda_driver": _cuda_text(_nvml_value(n.nvmlSystemGetCudaDriverVersion)),
            "memory_total_mb": round(mem.total / 2**20) if mem else None,
            "compute_capability": ".".join(map(str, cc)) if cc else None,
            "sm_clock_mhz": _nvml_value(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_SM),
            "sm_clock_max_mhz": _nvml_value(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_SM),
            "mem_clock_mhz": _nvml_value(n.nvmlDeviceGetClockInfo, h, n.NVML_CLOCK_MEM),
            "mem_clock_max_mhz": _nvml_value(n.nvmlDeviceGetMaxClockInfo, h, n.NVML_CLOCK_MEM),
            "power_limit_w": limit / 1000 if limit else None,
            "ecc_enabled": bool(ecc[0]) if ecc else None,
            "persistence_mode": _nvml_value(n.nvmlDeviceGetPersistenceMode, h),
            "pci_bus_id": getattr(_nvml_value(n.nvmlDeviceGetPciInfo, h), "busId", None),
        }
    finally:
        n.nvmlShutdown()


def gpu_info(index: int) -> dict:
    names = env.gpu_names()
    info: dict = {"index": index, "name": names[index] if index < len(names) else None}
    try:
        info.update({k: v for k, v in nvml_gpu(index).items() if v is not None or k not in info})
        info["nvml"] = "ok"
    except Exception as exc:
        info["nvml"] = f"unavailable: {type(exc).__name__}"
    if env.torch_cuda_problem() is None:
        try:
            torch = heavy("torch")

            info["cuda_runtime"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
        except Exception:  # pragma: no cover
            pass
    for dist in ("nvidia-cudnn-cu12", "nvidia-cudnn-cu13"):
        if env.dist_version(dist):
            info.setdefault("cudnn_wheel", f"{dist} {env.dist_version(dist)}")
    return info


def fingerprint(device: str = "cpu") -> dict:
    """A JSON-able description of the machine and ``device`` ("cpu", "cuda:N" or "auto")."""
    device = resolve_device(device)
    fp = {"device": device, "kind": "gpu" if device.startswith("cuda") else "cpu", "cpu": cpu_info(),
          "ram_gb": round(total_ram_mb() / 1024, 1),
          "os": {"system": platform.system(), "release": platform.release(), "platform": platform.platform()},
          "python": platform.python_version(), "libraries": library_versions()}
    if fp["kind"] == "gpu":
        fp["gpu"] = gpu_info(int(device.partition(":")[2] or 0))
    fp["id"] = device_id(fp)
    return fp


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm|c)\)", " ", text.lower())
    text = re.sub(r"@.*$", " ", text)
    text = re.sub(r"\b(cpu|processor|\d+-core)\b", " ", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def device_id(fp: dict) -> str:
    """A short stable id: "cpu-amd-epyc-2c", "gpu-nvidia-h100-80gb-hbm3"."""
    if fp.get("kind") == "gpu":
        return "gpu-" + (_slug(fp.get("gpu", {}).get("name") or "") or "unknown")
    cpu = fp.get("cpu", {})
    return f"cpu-{_slug(cpu.get('model') or '') or 'unknown'}-{cpu.get('logical_cores') or 0}c"
