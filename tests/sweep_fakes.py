"""A scripted stand-in for hwprofile.measure.measure, for sweep tests (no real timing).

Latency is derived from the workload's analytic activations so the fits have something to find;
HWPROFILE_FAKE_SLEEP (seconds) slows each call so a test can interrupt a sweep midway.
"""

from __future__ import annotations

import os
import time

from hwprofile.zoo import complexity, spec_from_dict

CALLS: list[tuple] = []


def fake_measure(runner, workload, timing=None, timeout_s=60.0, device="cpu"):
    time.sleep(float(os.environ.get("HWPROFILE_FAKE_SLEEP", "0")))
    CALLS.append((runner, workload.batch, workload.resolution))
    acts = complexity(spec_from_dict(workload.spec)).acts if workload.spec else 1e6
    ms = 1e-6 * workload.batch * acts
    return {"runner": runner, "status": "ok", "reason": None,
            "latency": {"median_ms": ms, "p90_ms": ms, "cv": 0.0, "repeats": 1, "iterations": 3,
                        "samples_ms": [[ms, ms, ms]], "medians_ms": [ms], "timing_method": "fake"},
            "throughput": {"samples_per_s": 1000 * workload.batch / ms}, "memory": {},
            "settings": {"fake": True}, "wall_s": 0.0}
