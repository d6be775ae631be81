"""``measure()``: one runner on one workload, isolated in child process(es), never raising for a child; and
``measure_peaks()``: the device's peaks, measured in a child process; ``measure_layers()``: a model end to end and
per layer (:mod:`hwprofile.analysis._layers` reads what it measured)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from hwprofile import bounds, runners
from hwprofile.errors import RunnerUnavailable
from hwprofile.lifetime import preamble
from hwprofile.measure._isolation import child_status, get_launcher, memory_cap_mb
from hwprofile.profile import Measurement, TimingConfig, Workload, latency_stats, utc_now
from hwprofile.runners import check_options
from hwprofile.trackers import clocks, energy
from hwprofile.trackers.memory import entry


def _settings(name: str, device: str, workload: Workload, timing: TimingConfig, launcher) -> dict:
    return {"runner": name, "device": device, "model": workload.model, "batch": workload.batch,
            "resolution": workload.resolution, "precision": workload.precision, "mode": workload.mode,
            "options": dict(workload.options), "timing": timing.to_dict(), **launcher.info()}


def _check(name: str, device: str, workload: Workload):
    cls = runners.runner_class(name)
    ok, reason = cls.available(device)
    if not ok:
        usable = runners.available_runners(device)
        raise RunnerUnavailable(f"runner {runners.unavailable_text(reason)}; available on {device}: "
                                f"{', '.join(usable) or 'none'}")
    check_options(cls, workload.options)
    if "threads" in workload.options:  # bounded by the cores of the machine that measures (a Ray node too)
        bounds.check("threads", workload.options["threads"], "threads")
    return cls


def measure(runner: str, workload: Workload, timing: TimingConfig = TimingConfig(), timeout_s: float = 120.0,
            device: str = "cpu", *, memory_limit_mb: float | None = None,
            isolation: str = "auto", layers: dict | None = None) -> Measurement:
    """Measure ``workload`` on ``runner`` in ``timing.repeats`` fresh child processes.

    ``memory_limit_mb`` caps each child's RSS (0: no cap; default: 85% of RAM on CPU, none on GPU).
    Bad input raises ConfigError; an unavailable runner or device raises an EnvironmentProblem.
    Everything that goes wrong inside a child (crash, out-of-memory, hang past ``timeout_s``, an
    exception, an unsupported combination) comes back as the Measurement's status and reason.
    ``layers`` ({"iterations": N, "onnx_path": graph for the counts, "peaks": {...} or None}) also times each
    layer, in one more child after the timing ones (_child.run_layers), so profiling stays out of
    the timing and the memory readings; the result is ``Measurement.layers``. A per-layer failure never fails
    the measurement: ``Measurement.layers`` then holds ``{"error": why}``.
    """
    start = time.perf_counter()
    name = runners.check_runner_name(runner)
    device = runners.resolve_device(device)
    cls = _check(name, device, workload)
    launcher = get_launcher(device, isolation)
    settings = _settings(name, device, workload, timing, launcher)
    unsupported = cls.unsupported_reason(workload)
    if unsupported:
        return Measurement(name, "unsupported", unsupported, None, None, {}, settings, time.perf_counter() - start)
    cap = memory_cap_mb(device, memory_limit_mb)
    job: dict[str, Any] = {"type": "measure", "runner_path": runners.runner_path(name), "device": device,
           "workload": workload.to_dict(), "timing": timing.to_dict()}
    runs = []
    for i in range(timing.repeats):
        exit, result, tail = launcher.run(job, timeout_s, cap)
        status, reason = _classify(exit, result, timeout_s, cap, tail)
        if status != "ok":
            where = f" (repeat {i + 1}/{timing.repeats})" if timing.repeats > 1 else ""
            settings.update((result or {}).get("settings") or {})
            return Measurement(name, status, f"{reason}{where}", None, None, {}, settings,
                               time.perf_counter() - start)
        runs.append((exit, result))
    baseline = launcher.baseline(job["runner_path"], device)
    breakdown = _layers(launcher, {**job, "type": "layers", "layers": layers}, timeout_s, cap) if layers else None
    return _combine(name, runs, baseline, settings, timing, time.perf_counter() - start, breakdown)


def _layers(launcher, job: dict, timeout_s: float, cap) -> dict:
    """The per-layer child's breakdown, or ``{"error": why}`` (the measurement itself stands)."""
    exit, result, tail = launcher.run(job, timeout_s, cap)
    status, reason = _classify(exit, result, timeout_s, cap, tail)
    if status != "ok":
        return {"error": f"per-layer times {status}: {reason}"}
    out = dict(result["layers"])
    out["foreign_cpu_cores"] = exit.get("foreign_cpu_cores")
    return out


def _classify(exit, result, timeout_s, cap, tail):
    return child_status(exit, result, timeout_s, cap, tail)


def _combine(name: str, runs: list, baseline: dict | None, settings: dict, timing: TimingConfig,
             wall_s: float, layers: dict | None = None) -> Measurement:
    results = [r for _, r in runs]
    method = results[0]["timing_method"]
    latency = latency_stats([r["samples_ms"] for r in results], method, timing.noise_cv).to_dict()
    foreign = [exit.get("foreign_cpu_cores") for exit, _ in runs]
    window = clocks.shares([r.get("gpu_clocks") for r in results])
    return Measurement(name, "ok", None, latency, _throughput(results), _memory(runs, baseline),
                       {**settings, **results[0]["settings"], **_timing_settings(results),
                        "foreign_cpu_cores": foreign, **({"gpu_clocks": window} if window else {})},
                       wall_s, layers,
                       energy.combine([r.get("energy") for r in results], results[0].get("energy_reason")))


def _timing_settings(results: list[dict]) -> dict:
    return {"warmup_iters": [r["warmup_iters"] for r in results], "warmup_s": [r["warmup_s"] for r in results],
            "timed_s": [r["timed_s"] for r in results], "stop_reasons": [r["stop_reason"] for r in results],
            "load_s": [r["load_s"] for r in results], "child_threads": [r.get("child_threads") for r in results]}


def _throughput(results: list[dict]) -> dict | None:
    windows = [r["throughput"] for r in results if r.get("throughput")]
    if not windows:
        return None
    best = statistics.median(w["samples_per_s"] for w in windows)
    return {"samples_per_s": best, "window_s": sum(w["window_s"] for w in windows),
            "iterations": sum(w["iterations"] for w in windows), "batch": windows[0]["batch"],
            "per_repeat_samples_per_s": [w["samples_per_s"] for w in windows],
            **({"source": windows[0]["source"]} if windows[0].get("source") else {})}


def _memory(runs: list, baseline: dict | None) -> dict:
    """Each number's max over repeats, plus the whole-child wait4 peak and its increase over a baseline."""
    out: dict[str, dict] = {}
    for _, result in runs:
        for key, value in result["memory"].items():
            if key not in out or value["value_mb"] > out[key]["value_mb"]:
                out[key] = value
    nvml = [exit["nvml_used_delta_mb"] for exit, _ in runs if exit.get("nvml_used_delta_mb") is not None]
    if nvml:
        out["nvml_used_delta_mb"] = entry(max(nvml), "max device memory used (NVML, device-wide, sampled every "
                                          "~1 ms by the parent) from before the child started to its exit, minus "
                                          "the value before it started; includes the child's CUDA context; max "
                                          "over repeats")
    peak = max(exit["maxrss_mb"] for exit, _ in runs)
    out["cpu_peak_rss_mb"] = entry(peak, "peak RSS of the whole measuring child (wait4 ru_maxrss), max over "
                                         "repeats")
    if baseline is not None:
        out["cpu_baseline_rss_mb"] = entry(baseline["maxrss_mb"], "peak RSS (wait4) of a baseline child that "
                                                                  "loaded the same libraries and ran nothing")
        out["cpu_peak_rss_increase_mb"] = entry(peak - baseline["maxrss_mb"], "cpu_peak_rss_mb minus "
                                                "cpu_baseline_rss_mb: what the model, its inputs and running "
                                                "it added (on GPU including the CUDA context's host memory)")
    return out


#: seconds each peak test runs
PEAKS_SECONDS = 0.5


def measure_peaks(device: str, seconds: float = PEAKS_SECONDS, timeout_s: float = 600.0,
                  threads: int | None = None) -> dict:
    """``hwprofile.measure.peaks(device)`` in a child process (torch stays out of the sweep's own
    process), with ``threads`` CPU threads (default: torch's), re-measured while other processes keep the CPU
    busy; ``{"error": ...}`` when it fails. The child dies with this process (hwprofile.lifetime)."""
    code = (preamble(os.getpid()) + "import json, sys\nfrom hwprofile.measure._peaks import peaks\n"
            "t = int(sys.argv[3]) or None\n"
            "print(json.dumps(peaks(sys.argv[1], seconds=float(sys.argv[2]), threads=t)))")
    try:
        done = subprocess.run([sys.executable, "-c", code, device, str(seconds), str(threads or 0)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"peaks could not be measured: {exc}"}
    if done.returncode != 0 or not done.stdout.strip():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:240]
        return {"error": f"peaks could not be measured: {tail}"}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["measured_utc"] = utc_now()
    return out


def measure_layers(runner: str, workload, *, device: str = "cpu", onnx_path: str | None = None,
                   iterations: int = 30, timing=None, timeout_s: float = 600.0, peaks: dict | None = None,
                   peak_seconds: float = 0.5, matmul_n: int | None = None):
    """Measure ``workload`` end to end and per layer (see the module docstring); returns the Measurement
    (``.layers`` holds the breakdown and the peaks measured in the per-layer child)."""
    spec = {"iterations": iterations, "onnx_path": onnx_path,
            "peaks": None if peaks is not None else {"seconds": peak_seconds, "matmul_n": matmul_n}}
    m = measure(runner, workload, timing or TimingConfig(budget_s=2.0, throughput_window_s=0.0), timeout_s=timeout_s,
                device=device, layers=spec)
    if m.ok and m.layers is not None and peaks is not None:
        m.layers["peaks"] = peaks
    return m
