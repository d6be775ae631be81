"""In-process readings taken while a runner runs: timing (warm-up, samples, throughput), memory, energy and
GPU clocks. Each module is a namespace of its own (``from hwprofile.trackers import memory``); heavy libraries
(torch, pynvml) are imported when a reading needs them.
"""

from __future__ import annotations

from hwprofile.trackers import clocks, energy, memory, timing

__all__ = ["clocks", "energy", "memory", "timing"]
