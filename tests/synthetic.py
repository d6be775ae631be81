"""Synthetic, in-memory profiles for testing the analysis (never saved under profiles/)."""

from __future__ import annotations

import random

from hwprofile.profile import Profile, Record
from hwprofile.zoo import complexity, get_spec, scale

STRATEGIES = ("d", "w", "r", "dw", "dwr", "dWr")


def synthetic_profile(*, driver: str = "acts", exponent: float = 0.9, noise: float = 0.02, seed: int = 0,
                      runners=("ort:cpu",), batches=(1, 8)) -> Profile:
    """Latency = c * driver^exponent * (1 + noise): a device where ``driver`` sets runtime
    (``driver="constant"``: the same latency for every model)."""
    rng = random.Random(seed)
    base = get_spec("EfficientNet-B0")
    specs = [(None, 1.0, base)] + [(st, s, scale(base, st, s)) for st in STRATEGIES for s in (2.0, 4.0)]
    records = []
    for runner in runners:
        for b in batches:
            for st, s, spec in specs:
                cx = complexity(spec)
                value = 1e7 if driver == "constant" else getattr(cx, driver)
                ms = 1e-6 * b * value ** exponent * (1 + rng.gauss(0, noise))
                samples = [ms * (1 + rng.gauss(0, noise)) for _ in range(20)]
                records.append(Record(
                    device_id="synthetic-cpu", model=base.name, strategy=st, scale=s, batch=b, runner=runner,
                    precision="fp32", mode="infer", resolution=spec.train_res, flops=cx.flops, params=cx.params,
                    acts=cx.acts, status="ok",
                    latency={"median_ms": ms, "p90_ms": ms * 1.05, "cv": noise, "repeats": 1,
                             "samples_ms": [samples], "medians_ms": [ms], "timing_method": "synthetic"},
                    throughput={"samples_per_s": 1000 * b / ms},
                    memory={"cpu_peak_rss_increase_mb": {"value_mb": 4 * b * cx.acts / 1e6,
                                                         "definition": "synthetic"}}))
    return Profile(devices={"synthetic-cpu": {"synthetic": True}}, sweeps=[{"device_id": "synthetic-cpu"}],
                   records=records)
