"""Seeded generator of SYNTHETIC device profiles for the compare/check/merge tests.

Nothing here is a measurement: latencies are drawn like real noise on the 2-core reference box
(a log-normal drift per process, log-normal noise within a process, rare slow outliers) around
a made-up cost of ``ns_per_act`` nanoseconds per activation. Device ids start with ``synthetic-``.

    python tests/data/profiles/make_profiles.py     # rewrites the fixture files beside this script
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = (("RegNetX-200MF", None, 1.0), ("RegNetX-200MF", "dWr", 2.0), ("EfficientNet-B0", None, 1.0),
          ("EfficientNet-B0", "dWr", 2.0))
CPU_FP = {"synthetic": True, "cpu": {"model": "Synthetic CPU (not a measurement)", "cores": 2},
          "versions": {"torch": "2.13.0+cpu", "onnxruntime": "1.32.0", "onnx": "1.23.2"}, "os": "Linux"}
GPU_FP = {"synthetic": True, "gpu": {"name": "Synthetic GPU (not a measurement)", "driver": "999.0"},
          "versions": {"torch": "2.13.0+cu130", "onnxruntime": "1.32.0", "onnx": "1.23.2"}, "os": "Linux"}


def counts(model: str, strategy: str | None, s: float) -> dict:
    from hwprofile.zoo import complexity, resolve

    cx = complexity(resolve(model, strategy, s) if strategy else resolve(model))
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts, "resolution": cx.resolution}


def drift_sd(spread: float, processes: int = 5) -> float:
    """The sd of log drift whose expected max/min-1 over ``processes`` is ``spread``.

    tech.md section 5 measures drift between processes as max/min-1 of 5 per-process medians
    (3.5-8.2% on the 2-core box); the expected range of 5 normal draws is 2.326 sd.
    """
    ranges = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 6: 2.534, 8: 2.847, 10: 3.078}
    return float(np.log1p(spread)) / ranges[processes]


DRIFT = drift_sd(0.05)  # "per-process drift ~5%" as max/min-1 over 5 processes: sd 2.1%


def latency(rng: np.random.Generator, true_ms: float, processes: int = 5, samples: int = 100,
            drift: float = DRIFT, noise: float = 0.05, outliers: float = 0.01) -> dict:
    """Latency statistics in the profile's field names, from drawn raw samples.

    ``drift``: sd of the log of each process's factor; ``noise``: sd of log samples inside a
    process; ``outliers``: share of samples made 1.3-2x slower (as real runs have).
    """
    per = []
    for _ in range(processes):
        centre = true_ms * float(np.exp(rng.normal(0.0, drift)))
        x = centre * np.exp(rng.normal(0.0, noise, samples))
        slow = rng.random(samples) < outliers
        x[slow] *= rng.uniform(1.3, 2.0, int(slow.sum()))
        per.append([round(float(v), 5) for v in x])
    flat = np.concatenate(per)
    q1, q3 = np.percentile(flat, [25, 75])
    return {"median_ms": float(np.median(flat)), "mean_ms": float(flat.mean()),
            "p90_ms": float(np.percentile(flat, 90)), "p99_ms": float(np.percentile(flat, 99)),
            "min_ms": float(flat.min()), "std_ms": float(flat.std()), "iqr_ms": float(q3 - q1),
            "cv": float(flat.std() / flat.mean()), "noisy": False, "median_ci_ms": None,
            "iterations": int(flat.size), "repeats": processes, "timing_method": "synthetic",
            "samples_ms": per, "medians_ms": [float(np.median(p)) for p in per]}


def record(rng: np.random.Generator, device_id: str, model: str, strategy: str | None, s: float, batch: int,
           runner: str, *, ns_per_act: float = 4.0, slowdown: float = 1.0, memory_mb: float | None = None,
           threads: int = 2, status: str = "ok", **noise) -> dict:
    c = counts(model, strategy, s)
    true_ms = ns_per_act * 1e-6 * c["acts"] * batch * slowdown
    lat = latency(rng, true_ms, **noise) if status == "ok" else None
    mem = memory_mb if memory_mb is not None else 20.0 + 4e-6 * c["acts"] * batch
    return {"device_id": device_id, "model": model, "strategy": strategy, "scale": s, "batch": batch,
            "runner": runner, "precision": "fp32", "mode": "infer", "resolution": c["resolution"],
            "flops": c["flops"], "params": c["params"], "acts": c["acts"], "status": status,
            "reason": None if status == "ok" else "synthetic failure",
            "latency": lat,
            "throughput": {"samples_per_s": 1000.0 * batch / lat["median_ms"], "batch": batch,
                           "per_repeat_samples_per_s": [1000.0 * batch / m for m in lat["medians_ms"]]}
            if lat else None,
            "memory": {"cpu_peak_rss_increase_mb": {"value_mb": round(mem, 3), "definition": "synthetic"}}
            if status == "ok" else {},
            "settings": {"threads": threads, "synthetic": True}, "source": "zoo",
            "measured_utc": "2026-01-01T00:00:00+00:00"}


def profile(seed: int, device_id: str = "synthetic-cpu", *, runners=("ort:cpu",), batches=(1, 8), samples: int = 40,
            fingerprint: dict | None = None, models=MODELS, utc: str = "2026-01-01T00:00:00+00:00",
            **kw) -> dict:
    """A whole profile (as JSON data) of ``models x batches x runners``."""
    rng = np.random.default_rng(seed)
    recs = [record(rng, device_id, m, st, s, b, r, samples=samples, **kw)
            for m, st, s in models for b in batches for r in runners]
    for r in recs:
        r["measured_utc"] = utc
    return {"schema": "hwprofile.profile", "schema_version": 1, "hwprofile_version": "0.1.0",
            "created_utc": utc, "updated_utc": utc,
            "devices": {device_id: fingerprint if fingerprint is not None else dict(CPU_FP)},
            "sweeps": [{"device_id": device_id, "synthetic": True, "seed": seed}], "records": recs}


FIXTURES = {
    "cpu-a.json": lambda: profile(1),
    "cpu-a2.json": lambda: profile(2, utc="2026-01-02T00:00:00+00:00"),
    "cpu-slow.json": lambda: profile(3, slowdown=1.15, utc="2026-01-03T00:00:00+00:00"),
    "cpu-threads4.json": lambda: profile(4, threads=4),
    "cpu-other-ort.json": lambda: profile(5, fingerprint={**CPU_FP, "versions": {**CPU_FP["versions"],
                                                                                "onnxruntime": "1.20.0"}}),
    "cpu-failed.json": lambda: profile(6, status="crashed"),
    "cpu-other-models.json": lambda: profile(7, models=(("RegNetY-200MF", None, 1.0),)),
    "gpu.json": lambda: profile(8, "synthetic-gpu", runners=("ort:cuda",), fingerprint=GPU_FP, ns_per_act=0.3,
                                drift=0.02, noise=0.02),
}


def write(directory: Path = HERE) -> list[Path]:
    out = []
    for name, make in FIXTURES.items():
        data = make()
        (directory / name).write_text(json.dumps(data, separators=(",", ":")) + "\n")
        out.append(directory / name)
    future = json.loads((directory / "cpu-a.json").read_text())
    future["schema_version"] = 3  # a version newer than this hwprofile reads
    (directory / "schema-v3.json").write_text(json.dumps(future, separators=(",", ":")) + "\n")
    (directory / "corrupt.json").write_text('{"schema": "hwprofile.profile", "schema_version": 1, "rec')
    return out + [directory / "schema-v3.json", directory / "corrupt.json"]


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(p)
