"""Memory probes: /proc for CPU RSS and its high-water mark, NVML and cudaMemGetInfo for GPUs.

Every number leaves here labelled with its definition (``{"value_mb", "definition"}``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil

from hwprofile._lazy import heavy
from hwprofile.env import nvml_handle

MB = 1024 * 1024


def entry(value_mb: float, definition: str) -> dict:
    return {"value_mb": round(float(value_mb), 3), "definition": definition}


def status_kb(field: str, pid: int | str = "self") -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM, ...), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident set size now (from /proc/<pid>/statm, cheap enough to poll)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / MB


def hwm_mb() -> float | None:
    kb = status_kb("VmHWM")
    return None if kb is None else kb / 1024


def reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS (write "5" to /proc/self/clear_refs, Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def total_ram_mb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MB
    except (ValueError, OSError):  # pragma: no cover
        return psutil.virtual_memory().total / MB


class NvmlSampler:
    """Device memory used (NVML, device-wide) sampled from a thread; ``peak_mb`` is the max seen."""

    def __init__(self, index: int, interval_s: float = 0.001) -> None:
        pynvml = heavy("pynvml")

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = nvml_handle(pynvml, index)  # NVML ignores CUDA_VISIBLE_DEVICES
        self.interval_s = interval_s
        self.start_mb = self.used_mb()
        self.peak_mb = self.start_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def used_mb(self) -> float:
        return self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / MB

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.used_mb())
            time.sleep(self.interval_s)

    def start(self) -> "NvmlSampler":
        self._thread.start()
        return self

    def stop(self) -> float:
        """Stop sampling; returns the peak increase over the start, in MiB."""
        self._stop.set()
        self._thread.join(timeout=1.0)
        self.peak_mb = max(self.peak_mb, self.used_mb())
        return self.peak_mb - self.start_mb


def start_nvml(device: str) -> NvmlSampler | None:
    """An NVML sampler for ``cuda:N``; None on CPU or where NVML is missing."""
    if not device.startswith("cuda"):
        return None
    try:
        return NvmlSampler(int(device.partition(":")[2] or 0)).start()
    except Exception:  # nvidia-ml-py not installed, driver library missing, ...
        return None


def cuda_free_mb(device: str) -> float | None:
    """cudaMemGetInfo free bytes (via torch) in MiB; None when torch has no CUDA."""
    if not device.startswith("cuda"):
        return None
    try:
        torch = heavy("torch")

        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(int(device.partition(":")[2] or 0))
        return free / MB
    except Exception:
        return None
