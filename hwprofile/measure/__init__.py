"""Measuring a workload on this machine: one runner in isolated child processes (``measure``), the device's
peaks and fingerprint, per-layer times (``measure_layers``), and the machine check that re-measures a
disturbed record (``measure_with_retries``). Everything that starts a measuring process lives here.

Modules: ``_core`` (measure, measure_peaks, measure_layers), ``_child`` (what runs in the child),
``_forkserver`` and ``_isolation`` (process isolation, memory caps, other load), ``_peaks`` (matmul FLOP/s and
copy bandwidth), ``_fingerprint`` (what identifies the device), ``_quiet`` (the system check and re-measuring).
"""

from __future__ import annotations

from hwprofile.measure._core import measure, measure_layers, measure_peaks
from hwprofile.measure._fingerprint import device_id, fingerprint
from hwprofile.measure._peaks import peaks
from hwprofile.measure._quiet import measure_with_retries

__all__ = ["device_id", "fingerprint", "measure", "measure_layers", "measure_peaks", "measure_with_retries", "peaks"]
