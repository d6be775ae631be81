"""Executors: where a sweep's measurements run.

The sweep plans the items, counts them and keeps the profile; an executor decides where each
prepared workload is measured. Two exist:

- ``local`` (:class:`~hwprofile.sweep._local.LocalExecutor`): this machine, one measurement after
  another, in hwprofile's isolated child process (``hwprofile.measure.measure``); it hands each
  Measurement back to ``run_sweep`` (the :class:`Executor` protocol);
- ``ray`` (:class:`~hwprofile.fleet._ray.RayExecutor`): one Ray task per measurement on a node
  of a Ray cluster that holds the device, measured there with the same ``measure`` and the same
  quality rules, on every node at once (:mod:`~hwprofile.fleet._schedule`). It runs the whole
  sweep itself (``run_sweep`` hands it over: it has a ``run_sweep`` method).

Both add ``settings.executor`` ("local" | "ray") and ``settings.node`` to every measurement.
Importing this package imports no heavy library (ray is imported when a Ray executor connects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hwprofile.profile import Measurement


@dataclass(frozen=True)
class Target:
    """Where a sweep measures: the device string runners get, the runners, the device's fingerprint."""

    device: str  # "cpu" or "cuda:N" as the measuring process sees it
    runners: list[str]
    fingerprint: dict  # measured where the measurements run
    device_id: str


class Executor(Protocol):
    """What ``run_sweep`` needs from an executor that measures one item at a time."""

    name: str

    def target(self, config) -> Target:
        """Resolve ``config.device`` and its runners where the measurements will run (raises on problems)."""

    def measure(self, runner: str, workload, timing, timeout_s: float, device: str, **kw) -> Measurement:
        """One prepared workload measured with ``timing``: a Measurement (status, reason, latency...).

        ``kw`` are passed on to :func:`hwprofile.measure.measure` (e.g. ``layers``)."""

    def stop_reason(self) -> str | None:
        """Why the sweep cannot go on (e.g. the cluster connection is lost), or None."""


EXECUTORS = ("local", "ray")
