"""Measuring a workload: the records it is described by and the statistics of its samples.

The steps live in submodules, imported where they are used: :func:`hwprofile.measure.core.measure`
runs a workload in child process(es) and returns a :class:`Measurement`;
:func:`hwprofile.measure.fingerprint.fingerprint` / ``device_id`` describe the machine;
:func:`hwprofile.measure.peaks.peaks` measures its dense matmul FLOP/s and copy bandwidth. This
package itself exports only the data types and statistics every layer shares; it imports no heavy
library.
"""

from __future__ import annotations

from .records import Measurement, TimingConfig, Workload, spec_from_dict, spec_to_dict
from .stats import LatencyStats, latency_stats

__all__ = ["LatencyStats", "Measurement", "TimingConfig", "Workload", "latency_stats", "spec_from_dict",
           "spec_to_dict"]
