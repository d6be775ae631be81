"""The local executor: measurements on this machine, in hwprofile's isolated child process."""

from __future__ import annotations

import platform
from collections.abc import Callable

from . import Target


class LocalExecutor:
    """Runs ``measure_fn`` (default: :func:`hwprofile.measure.measure`) here."""

    name = "local"

    def __init__(self, measure_fn: Callable[..., object] | None = None):
        self.measure_fn = measure_fn

    def target(self, config) -> Target:
        from ..sweep import resolve_target

        device, runners, fp = resolve_target(config)
        return Target(device, runners, fp, fp.get("id") or _device_id(fp))

    def measure(self, runner: str, workload, timing, timeout_s: float, device: str, **kw) -> dict:
        from ..measure import measure

        m = (self.measure_fn or measure)(runner, workload, timing, timeout_s=timeout_s, device=device, **kw)
        md = m.to_dict() if hasattr(m, "to_dict") else dict(m)
        md["settings"] = {**(md.get("settings") or {}), "executor": "local", "node": platform.node()}
        return md

    def stop_reason(self) -> str | None:
        return None


def _device_id(fp: dict) -> str:
    from ..measure import device_id

    return device_id(fp)
