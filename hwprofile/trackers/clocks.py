"""NVML's clock-violation counters of one GPU, read inside the measuring child over its timed window only.

``nvmlDeviceGetViolationStatus(handle, policy).violationTime`` is the cumulative time (ns) the GPU was held
below its application clocks by one limiter. Read before the first timed iteration (after warm-up) and after
the throughput window, the differences cover the timed window alone: not the export or engine build, the
process start, the loading or the baseline child, when the GPU is idle.

Idle is its own policy: LOW_UTILIZATION (the clocks drop because the GPU has too little work, e.g. a
launch-bound batch-1 model). It is recorded apart (``low_utilization``) and is not a disturbance; the total
(TOTAL_APP_CLOCKS) includes it, so the share graded as "below the application clocks" is the total minus it.
"""

from __future__ import annotations

import time

from hwprofile._lazy import heavy
from hwprofile.env import has_module, nvml_handle, parse_device

#: nvmlPerfPolicyType_t: NVML_PERF_POLICY_POWER ... NVML_PERF_POLICY_TOTAL_APP_CLOCKS
POLICIES = {"power": 0, "thermal": 1, "sync_boost": 2, "board_limit": 3, "low_utilization": 4, "reliability": 5,
            "below_app_clocks": 10}


def open_nvml(device: str):
    """(pynvml, handle) of CUDA device ``device`` after ``nvmlInit``, or (None, None) without NVML."""
    if not str(device).startswith("cuda") or not has_module("pynvml"):
        return None, None
    nvml = heavy("pynvml")
    try:
        nvml.nvmlInit()
        return nvml, nvml_handle(nvml, parse_device(device)[1] or 0)
    except Exception:  # NVMLError: no driver, no such device, ...
        return None, None


def violation_ns(nvml, handle) -> dict[str, int]:
    """Cumulative ns each limiter held the GPU below its application clocks; unsupported ones left out."""
    out = {}
    for name, policy in POLICIES.items():
        try:
            out[name] = int(nvml.nvmlDeviceGetViolationStatus(handle, policy).violationTime)
        except Exception:  # NVMLError_NotSupported on this GPU or driver
            continue
    return out


class ClockWindow:
    """The violation counters over one window: :meth:`start` before it, :meth:`stop` after it."""

    def __init__(self, nvml, handle, clock=None) -> None:
        self.nvml, self.handle = nvml, handle
        self.clock = clock or (lambda: time.perf_counter())
        self._t0 = 0.0
        self._c0: dict[str, int] = {}

    def start(self) -> None:
        self._c0 = violation_ns(self.nvml, self.handle)
        self._t0 = self.clock()

    def stop(self) -> dict:
        seconds = self.clock() - self._t0
        after = violation_ns(self.nvml, self.handle)
        return {"window_s": round(seconds, 6),
                "violation_ns": {k: max(0, after[k] - self._c0[k]) for k in after if k in self._c0}}


def shares(windows: list[dict]) -> dict | None:
    """The timed windows of a record's processes as shares of their summed time, per limiter:
    ``below_app_clocks_share`` (``below_app_clocks`` there is the total minus idle) and ``low_utilization``."""
    windows = [w for w in windows if w and w.get("window_s")]
    if not windows:
        return None
    total_ns = sum(w["window_s"] for w in windows) * 1e9
    keys = set.intersection(*(set(w["violation_ns"]) for w in windows))
    ns = {k: sum(w["violation_ns"][k] for w in windows) for k in keys}
    share = {k: round(min(1.0, v / total_ns), 4) for k, v in ns.items()}
    idle = share.pop("low_utilization", None)
    if "below_app_clocks" in share and idle is not None:
        share["below_app_clocks"] = round(max(0.0, share["below_app_clocks"] - idle), 4)
    out = {"window_s": round(total_ns / 1e9, 3), "below_app_clocks_share": share}
    if idle is not None:
        out["low_utilization"] = idle
    return out
