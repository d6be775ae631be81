"""The measurement core: isolated, adaptive, labelled latency / throughput / memory numbers.

``measure(runner, workload)`` runs a workload in child process(es) and returns a
:class:`Measurement`; ``fingerprint(device)`` / ``device_id(fp)`` describe the machine;
``peaks(device)`` measures its dense matmul FLOP/s and copy bandwidth. Importing this package
imports no heavy library.
"""

from __future__ import annotations

from .core import measure
from .fingerprint import device_id, fingerprint
from .peaks import peaks
from .records import Measurement, TimingConfig, Workload, spec_from_dict, spec_to_dict
from .stats import LatencyStats, summarize

__all__ = ["LatencyStats", "Measurement", "TimingConfig", "Workload", "device_id", "fingerprint", "measure",
           "peaks", "spec_from_dict", "spec_to_dict", "summarize"]
