"""The code that runs inside a measurement child: load, warm up, time, measure memory, report.

Used by forked children of the fork server and by spawned children
(``python -m hwprofile.measure._child JOB.json``). The result goes to ``job["result_path"]`` as JSON;
a crash, a kill or a hang leaves no result and the parent classifies the exit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
import traceback

from hwprofile.atomic import write_text
from hwprofile.lifetime import die_with_parent
from hwprofile.measure._peaks import peaks
from hwprofile.profile import TimingConfig, Workload, bracketed_clean, layer_rounds, merge_rounds
from hwprofile.runners import Unsupported, load_path, onnx_layers
from hwprofile.trackers import clocks as gpu_clocks
from hwprofile.trackers import energy
from hwprofile.trackers import memory as mem
from hwprofile.trackers.timing import run_timed, sample, warm_up

_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "bad_alloc",
                "failed to allocate", "outofmemory")


def _load_runner(path: str):
    return load_path(path)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")[:300]


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return any(m in str(exc).lower() for m in _OOM_MARKERS)


def run_baseline(job: dict) -> dict:
    """Load the runner's libraries and stop: the reference for memory increases."""
    _load_runner(job["runner_path"]).preload()
    return {"status": "ok", "rss_mb": mem.rss_mb()}


def run_measure(job: dict) -> dict:
    """Load the workload, run the timing loop, collect memory and settings."""
    cls = _load_runner(job["runner_path"])
    workload, cfg, device = Workload.from_dict(job["workload"]), TimingConfig.from_dict(job["timing"]), job["device"]
    try:
        cls.preload()
        free0 = mem.cuda_free_mb(device) if cls.device_type == "cuda" else None
        nvml, handle = gpu_clocks.open_nvml(device) if cls.device_type == "cuda" else (None, None)
        window = gpu_clocks.ClockWindow(nvml, handle) if nvml is not None else None
        meter, no_energy = energy.open_meter(device, nvml) if cfg.throughput_window_s > 0 else (
            None, "no throughput window (throughput_window_s = 0), so no energy window")
        start = time.perf_counter()
        with cls(device) as runner:
            runner.load(workload)
            load_s = time.perf_counter() - start
            mark = _run_memory_start()
            runner.reset_peak_memory()
            timed = run_timed(runner, cfg, workload.batch, meter=meter, clocks=window)
            memory = _run_memory_end(mark) | runner.memory() | _gpu_memory(free0, device)
            out = {"status": "ok", "reason": None, "timing_method": runner.timing_method,
                   "settings": runner.settings(), "memory": memory, "load_s": load_s, **timed.to_dict(),
                   "energy_reason": no_energy}
        return out
    except Unsupported as exc:
        return {"status": "unsupported", "reason": str(exc)}
    except BaseException as exc:  # the parent goes on; the reason is one line
        traceback.print_exc()
        return {"status": "oom" if _is_oom(exc) else "failed", "reason": _one_line(exc)}


def run_layers(job: dict) -> dict:
    """Per-layer times in a child of their own, so the profiler never touches a record's timing
    or memory reading, in phases that never overlap: the clean latency alone, then rounds of profiled runs
    alone (``runner.layer_times``: ONNX Runtime closes its clean session first, so one session is alive at a
    time), each followed by the clean latency again; then the device's peaks at the runner's thread count,
    after the runner is closed. Each profiled round lies between two clean blocks, so a machine whose speed
    drifts moves the clean latency (``end_to_end_ms``) as much as the profiled runs (:func:`layer_rounds`)."""
    cls = _load_runner(job["runner_path"])
    workload, cfg, device = Workload.from_dict(job["workload"]), TimingConfig.from_dict(job["timing"]), job["device"]
    spec = job["layers"]
    iterations = int(spec.get("iterations") or 20)
    try:
        cls.preload()
        with cls(device) as runner:
            if not hasattr(runner, "layer_times"):
                raise Unsupported(f"{runner.name} cannot time layers")
            runner.load(workload)
            clean = run_timed(runner, dataclasses.replace(cfg, throughput_window_s=0.0), workload.batch)
            path = spec.get("onnx_path") or (workload.path if workload.kind == "onnx" else None)
            info = onnx_layers(path, workload.batch) if path else None
            blocks, rounds = [clean.samples_ms], []
            for k in layer_rounds(iterations):
                out = runner.layer_times(k, info)
                rounds.append(out)
                if not out.pop("restored", True):  # the profiler stays attached: no clean runs any more
                    break
                blocks.append(_clean_block(runner, cfg, k))
            threads = runner.settings().get("threads") if cls.device_type == "cpu" else None
        out = merge_rounds(rounds)
        medians = [statistics.median(b) for b in blocks]
        out.update(end_to_end_ms=bracketed_clean(medians, len(rounds)), clean_blocks_ms=medians,
                   clean_after_ms=medians[-1] if len(medians) > 1 else None, clean_samples_ms=clean.samples_ms,
                   timing_method=runner.timing_method)
        if spec.get("peaks"):  # after every run, with the runner's threads, on the same device
            try:
                out["peaks"] = peaks(device, seconds=float(spec["peaks"].get("seconds") or 0.5),
                                     matmul_n=spec["peaks"].get("matmul_n"), threads=threads)
            except Exception as exc:  # noqa: BLE001 - the layer times stand without a roofline
                traceback.print_exc()
                out["peaks"] = {"error": f"peaks could not be measured: {_one_line(exc)}"}
        return {"status": "ok", "reason": None, "layers": out}
    except Unsupported as exc:
        return {"status": "unsupported", "reason": str(exc)}
    except BaseException as exc:  # the parent goes on; the reason is one line
        traceback.print_exc()
        return {"status": "oom" if _is_oom(exc) else "failed", "reason": _one_line(exc)}


def _clean_block(runner, cfg: TimingConfig, iterations: int) -> list[float]:
    """A short clean timing after a profiled round (a few warm-up runs: ORT re-created its session)."""
    short = TimingConfig(warmup_iters=3, warmup_s=0.0, min_iters=min(10, max(3, iterations)),
                         max_iters=max(10, iterations), target_rel_ci=cfg.target_rel_ci,
                         budget_s=min(cfg.budget_s, 1.0), throughput_window_s=0.0)
    warm_up(runner, short)
    return sample(runner, short)[0]


def _run_memory_start() -> dict:
    return {"rss_loaded": mem.rss_mb(), "reset": mem.reset_hwm()}


def _run_memory_end(start: dict) -> dict:
    out = {"cpu_rss_after_load_mb": mem.entry(start["rss_loaded"] or 0, "RSS of the measuring process once the "
                                              "model/session was loaded, before the first run")}
    hwm = mem.hwm_mb()
    if start["reset"] and hwm is not None and start["rss_loaded"] is not None:
        out["cpu_run_peak_rss_mb"] = mem.entry(hwm, "peak RSS of the measuring process from the end of loading "
                                               "through warm-up, timing and throughput (VmHWM reset via "
                                               "/proc/self/clear_refs)")
        out["cpu_run_rss_increase_mb"] = mem.entry(hwm - start["rss_loaded"], "cpu_run_peak_rss_mb minus the "
                                                   "RSS after loading: what running added (activations, arenas, "
                                                   "workspaces)")
    return out


def _gpu_memory(free0: float | None, device: str) -> dict:
    """cudaMemGetInfo delta; NVML is sampled by the parent (isolation.SpawnLauncher)."""
    out = {}
    free1 = mem.cuda_free_mb(device) if free0 is not None else None
    if free0 is not None and free1 is not None:
        out["cuda_mem_get_info_delta_mb"] = mem.entry(free0 - free1, "cudaMemGetInfo free memory before loading "
                                                      "minus free memory after the runs (device-wide, "
                                                      "point in time)")
    return out


def write_result(path: str, result: dict) -> None:
    """The child's result for the parent, through the one atomic writer (the parent's private folder)."""
    write_text(path, json.dumps(result), replace=True, what="measurement result")


def execute(job: dict) -> None:
    """Run ``job`` and write its result; the caller exits the process afterwards."""
    kind = job.get("type")
    result = run_baseline(job) if kind == "baseline" else run_layers(job) if kind == "layers" else run_measure(job)
    result["child_threads"] = len(os.listdir("/proc/self/task"))
    write_result(job["result_path"], result)


def main(argv: list[str] | None = None) -> int:
    """Spawned child: ``python -m hwprofile.measure._child JOB.json``."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as fh:
        job = json.load(fh)
    die_with_parent(job.get("parent_pid"))  # a killed hwprofile leaves no measuring child behind
    execute(job)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown (CUDA/ORT destructors): the result is written


if __name__ == "__main__":
    main()
