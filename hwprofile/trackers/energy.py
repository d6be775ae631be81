"""Energy meters read inside the measuring child around its throughput window.

- GPU: NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the driver
  loaded; Volta and later). It is device-wide: the whole board, whatever process runs on it.
- CPU: RAPL through powercap (``/sys/class/powercap/intel-rapl:N/energy_uj``, microjoules, one counter per
  package, wrapping at ``max_energy_range_uj``). It is package-wide: every process on those sockets.

Both counters advance in steps (NVML every 20-100 ms on recent GPUs, RAPL about every millisecond), so a
window is read from a fresh step: :meth:`Meter.fresh` waits (at most :data:`MAX_TICK_WAIT_S`) for the counter
to move before the window starts and after it ends. The energy then covers the window plus at most one update
period of the idle tail after it. Windows shorter than :data:`MIN_WINDOW_S` are lengthened to it (short windows
give odd values: CodeCarbon #309; Zeus measures over windows of a second or more).

Where no counter can be read, :func:`open_meter` says why in one sentence; the record stores that reason.
"""

from __future__ import annotations

import time
from pathlib import Path

from hwprofile._lazy import heavy
from hwprofile.env import has_module, nvml_handle, parse_device

#: the shortest window energy is read over; a shorter throughput window is lengthened to it
MIN_WINDOW_S = 1.0
#: the longest wait for a counter to move (NVML updates every 20-100 ms)
MAX_TICK_WAIT_S = 0.25
POWERCAP = Path("/sys/class/powercap")


class Meter:
    """A cumulative energy counter in joules; ``name`` and ``scope`` say what it measures."""

    name = ""
    scope = ""

    def read_j(self) -> float:
        raise NotImplementedError

    def fresh(self) -> tuple[float, float]:
        """(joules, time.perf_counter()) right after the counter moved (or after :data:`MAX_TICK_WAIT_S` if
        it did not)."""
        first = self.read_j()
        end = time.perf_counter() + MAX_TICK_WAIT_S
        while True:
            value, now = self.read_j(), time.perf_counter()
            if value != first or now >= end:
                return value, now
            time.sleep(0.001)

    def describe(self) -> dict:
        return {"meter": self.name, "scope": self.scope}


class NvmlEnergy(Meter):
    """NVML's total-energy counter of one GPU (millijoules)."""

    name = "nvml total energy"
    scope = "the whole GPU board (device-wide: every process on it)"

    def __init__(self, nvml, handle) -> None:
        self.nvml, self.handle = nvml, handle

    def read_j(self) -> float:
        return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) / 1e3


class RaplEnergy(Meter):
    """The sum of RAPL's package counters (microjoules), each unwrapped at its ``max_energy_range_uj``."""

    name = "rapl package energy"
    scope = "the CPU packages (package-wide: every process on those sockets)"

    def __init__(self, domains: list[Path]) -> None:
        self.domains = domains
        self.ranges = [_int(d / "max_energy_range_uj") or 2 ** 32 for d in domains]
        self._last = [self._raw(d) for d in domains]
        self._total_uj = 0

    @staticmethod
    def _raw(domain: Path) -> int:
        return int((domain / "energy_uj").read_text())

    def read_j(self) -> float:
        for i, d in enumerate(self.domains):
            value = self._raw(d)
            step = value - self._last[i]
            self._total_uj += step if step >= 0 else step + self.ranges[i]  # the counter wrapped
            self._last[i] = value
        return self._total_uj / 1e6


def _int(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def rapl_meter(root: Path = POWERCAP) -> tuple[RaplEnergy | None, str | None]:
    """The RAPL package meter, or (None, why not)."""
    if not root.is_dir():
        return None, (f"no RAPL: {root} does not exist on this machine (virtual machines rarely expose the CPU's "
                      "energy counters)")
    packages = [d for d in sorted(root.glob("intel-rapl:*")) if d.name.count(":") == 1
                and (d / "name").exists() and (d / "name").read_text().strip().startswith("package")]
    if not packages:
        return None, f"no RAPL package domain under {root} (no intel-rapl:N whose name is package-N)"
    try:
        return RaplEnergy(packages), None
    except PermissionError:
        return None, (f"RAPL's {packages[0] / 'energy_uj'} is not readable by this user (root only since Linux "
                      "5.10): run as root, or make energy_uj readable")
    except (OSError, ValueError) as exc:
        return None, f"RAPL's energy_uj could not be read: {exc}"


def nvml_meter(device: str, nvml=None) -> tuple[NvmlEnergy | None, str | None]:
    """The NVML energy meter of CUDA device ``device`` (NVML must be initialised by the caller when ``nvml``
    is given; otherwise this initialises it), or (None, why not)."""
    if nvml is None:
        if not has_module("pynvml"):
            return None, "nvidia-ml-py (pynvml) is not installed: no GPU energy counter"
        nvml = heavy("pynvml")
        try:
            nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return None, f"NVML did not start ({type(exc).__name__}): no GPU energy counter"
    try:
        handle = nvml_handle(nvml, parse_device(device)[1] or 0)
        meter = NvmlEnergy(nvml, handle)
        meter.read_j()
    except Exception as exc:  # NVMLError_NotSupported on GPUs older than Volta, ...
        return None, f"the GPU has no readable total-energy counter ({type(exc).__name__}; Volta or newer needed)"
    return meter, None


def open_meter(device: str, nvml=None, powercap: Path = POWERCAP) -> tuple[Meter | None, str | None]:
    """The energy meter of ``device`` ("cpu" or "cuda:N"), or (None, why there is none)."""
    if str(device).startswith("cuda"):
        return nvml_meter(device, nvml)
    return rapl_meter(powercap)


def window_reading(meter: Meter, start: tuple[float, float], end: tuple[float, float], images: int) -> dict:
    """One window's energy: joules, the seconds between the two readings and the images run in it."""
    (j0, t0), (j1, t1) = start, end
    return {**meter.describe(), "joules": round(max(0.0, j1 - j0), 6), "window_s": round(max(0.0, t1 - t0), 6),
            "images": int(images)}


def combine(readings: list[dict], reason: str | None = None) -> dict | None:
    """A record's energy from its processes' windows: joules per image and mean watts over all of them;
    with no reading, the reason there is none (None when nothing was attempted)."""
    readings = [r for r in readings if r]
    if not readings:
        return None if reason is None else {"reason": reason}
    joules = sum(r["joules"] for r in readings)
    seconds = sum(r["window_s"] for r in readings)
    images = sum(r["images"] for r in readings)
    out = {"meter": readings[0]["meter"], "scope": readings[0]["scope"], "joules": round(joules, 6),
           "window_s": round(seconds, 6), "images": images, "windows": len(readings)}
    if images > 0:
        out["joules_per_image"] = joules / images
    if seconds > 0:
        out["mean_watts"] = joules / seconds
    return out
