"""The local executor: measurements on this machine, in hwprofile's isolated child process."""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping
from typing import Any

from hwprofile.errors import RunnerUnavailable
from hwprofile.measure import device_id, fingerprint, measure
from hwprofile.profile import Measurement
from hwprofile.runners import availability, available_runners, resolve_device, runner_class
from hwprofile.sweep._config import SweepConfig
from hwprofile.sweep._executor import Target


class LocalExecutor:
    """Runs ``measure_fn`` (default: :func:`hwprofile.measure.measure`) here."""

    name = "local"

    def __init__(self, measure_fn: Callable[..., Measurement | Mapping[str, Any]] | None = None):
        self.measure_fn = measure_fn

    def target(self, config) -> Target:
        device, runners, fp = resolve_target(config)
        return Target(device, runners, fp, fp.get("id") or _device_id(fp))

    def measure(self, runner: str, workload, timing, timeout_s: float, device: str, **kw) -> Measurement:
        m = Measurement.of((self.measure_fn or measure)(runner, workload, timing, timeout_s=timeout_s, device=device,
                                                        **kw))
        return m.with_settings(executor="local", node=platform.node())

    def stop_reason(self) -> str | None:
        return None


def _device_id(fp: dict) -> str:
    return device_id(fp)

def resolve_target(config: SweepConfig) -> tuple[str, list[str], dict]:
    """This machine's device for ``config``, its runners (checked) and its fingerprint."""
    device = resolve_device(config.device)
    runners = list(config.runners) if config.runners else available_runners(device)
    runners = [r for r in runners if config.mode in runner_class(r).modes]
    for r in runners:
        ok, why = availability(r, device)
        if not ok:
            raise RunnerUnavailable(f"{why} (available on {device}: {', '.join(available_runners(device)) or 'none'})")
    return device, runners, fingerprint(device)
