"""Repeatability: the same measurement in 5 separate runs, max/min - 1 of the 5 medians.

EfficientNet-B0, batch 1, ort:cpu. Methods, interleaved run by run (A B C D A B C D ...):
  hwprofile-1p  measure() with one measuring process (fork-server child), adaptive, 2.2 s budget
  hwprofile-3p  measure() with 3 processes (repeats=3, 0.5 s budget each), median of their medians
  loop40        a fresh process: session, 5 warm-up runs, a plain 40-iteration loop, median
  autorange     a fresh process: torch.utils.benchmark Timer.blocked_autorange(min_run_time=2), median
  one-process   control: ONE long-lived process (session loaded once, before the runs) measures a 2 s window
                of back-to-back runs at each of its turns, median. No process start, no new session, no new
                memory layout: its spread is the machine's own drift over the bench, the floor under every
                method that starts a process.
Goal (issue 4): hwprofile <= 2 % at <= 3 s per measurement.

Run: python bench/bench_repeat.py [--runs 5] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_harness import ForeignLoad, export_effnet_b0, machine  # noqa: E402

CHILD = r"""
import json, sys, time, statistics
t0 = time.perf_counter()
import numpy as np, onnxruntime as ort
path, threads, method = sys.argv[1], int(sys.argv[2]), sys.argv[3]
so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
start = time.perf_counter()
sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
feed = {sess.get_inputs()[0].name: np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)}
if method == "serve":  # the one-process control: a 2 s window at each line on stdin
    for _ in range(10):
        sess.run(None, feed)
    for line in sys.stdin:
        times, start = [], time.perf_counter()
        while time.perf_counter() - start < 2.0:
            t = time.perf_counter_ns(); sess.run(None, feed); times.append((time.perf_counter_ns() - t) / 1e6)
        print(json.dumps({"median_ms": statistics.median(times), "measure_s": time.perf_counter() - start}),
              flush=True)
    sys.exit(0)
elif method == "loop40":
    for _ in range(5):
        sess.run(None, feed)
    times = []
    for _ in range(40):
        t = time.perf_counter_ns(); sess.run(None, feed); times.append((time.perf_counter_ns() - t) / 1e6)
    median = statistics.median(times)
else:
    from torch.utils.benchmark import Timer
    m = Timer("run(None, feed)", globals={"run": sess.run, "feed": feed}).blocked_autorange(min_run_time=2.0)
    median = m.median * 1e3
print(json.dumps({"median_ms": median, "measure_s": time.perf_counter() - start,
                  "process_s": time.perf_counter() - t0}))
"""


def fresh_process(path: Path, threads: int, method: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(threads), method], capture_output=True,
                         text=True, check=True).stdout
    return {**json.loads(out.strip().splitlines()[-1]), "wall_s": time.perf_counter() - start}


class OneProcess:
    """The control: one long-lived child that measures a 2 s window each time it is asked."""

    def __init__(self, path: Path, threads: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(threads), "serve"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self) -> dict:
        start = time.perf_counter()
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return {**json.loads(self.proc.stdout.readline()), "wall_s": time.perf_counter() - start}

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def hwprofile(path: Path, threads: int, repeats: int, warmup_s: float, budget_s: float) -> dict:
    from hwprofile.measure import measure
    from hwprofile.profile import TimingConfig, Workload

    cfg = TimingConfig(warmup_iters=10, warmup_s=warmup_s, min_iters=10, budget_s=budget_s, repeats=repeats,
                       throughput_window_s=0.0)
    w = Workload.from_file(str(path), batch=1, resolution=224, options={"threads": threads})
    start = time.perf_counter()
    m = measure("ort:cpu", w, cfg)
    assert m.status == "ok", m.reason
    return {"median_ms": m.latency["median_ms"], "wall_s": time.perf_counter() - start,
            "iterations": m.latency["iterations"], "noisy": m.latency["noisy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: physical cores)")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()

    from hwprofile.measure import measure
    from hwprofile.profile import TimingConfig, Workload
    from hwprofile.runners._ort import default_threads

    threads = args.threads or default_threads()
    info = machine()
    path = export_effnet_b0(1)
    # start the fork server and its baseline child outside the measured runs
    measure("ort:cpu", Workload.from_file(str(path), 1, 224, options={"threads": threads}),
            TimingConfig(warmup_iters=1, warmup_s=0, min_iters=3, budget_s=0.05, throughput_window_s=0))
    control = OneProcess(path, threads)
    methods = {"hwprofile-1p": lambda: hwprofile(path, threads, 1, 0.3, 2.2),
               "hwprofile-3p": lambda: hwprofile(path, threads, 3, 0.2, 0.5),
               "loop40": lambda: fresh_process(path, threads, "loop40"),
               "autorange": lambda: fresh_process(path, threads, "autorange"),
               "one-process": control}
    runs: dict[str, list[dict]] = {k: [] for k in methods}
    for _ in range(args.runs):
        for name, fn in methods.items():
            with ForeignLoad() as load:
                runs[name].append({**fn(), "foreign_cpu_percent_max": load.max_percent})
    control.close()
    rows = {}
    for name, rs in runs.items():
        medians = [r["median_ms"] for r in rs]
        rows[name] = {"medians_ms": medians, "spread": max(medians) / min(medians) - 1,
                      "wall_s_max": max(r["wall_s"] for r in rs),
                      "measure_s_max": max(r.get("measure_s", r["wall_s"]) for r in rs),
                      "foreign_cpu_percent_max": max(r["foreign_cpu_percent_max"] for r in rs)}
    best = rows["hwprofile-1p"]["spread"], rows["hwprofile-3p"]["spread"]
    result = {"bench": "repeatability", "model": "EfficientNet-B0", "batch": 1, "runner": "ort:cpu",
              "threads": threads, "runs": args.runs, "methods": rows,
              "goal": "hwprofile max/min-1 <= 2% at <= 3 s per measurement",
              "met": any(rows[k]["spread"] <= 0.02 and rows[k]["wall_s_max"] <= 3.0
                         for k in ("hwprofile-1p", "hwprofile-3p")),
              "machine": {**info, "load_average_at_end": os.getloadavg()}}
    print(f"machine: {info['cpu']}, {info['cores']} cores; load average {info['load_average_at_start'][0]:.2f} "
          f"at start, {result['machine']['load_average_at_end'][0]:.2f} at end")
    print(f"EfficientNet-B0 b1 ort:cpu, {threads} threads, {args.runs} separate runs per method, interleaved")
    for name, row in rows.items():
        print(f"{name:13s} spread {row['spread'] * 100:5.2f} %  medians "
              f"{' '.join(f'{m:.3f}' for m in row['medians_ms'])} ms  wall <= {row['wall_s_max']:.2f} s "
              f"(measuring part <= {row['measure_s_max']:.2f} s); other processes' CPU <= "
              f"{row['foreign_cpu_percent_max']:.0f} %")
    print(f"control: one long-lived process drifted {rows['one-process']['spread'] * 100:.2f} % over the same "
          "runs (no process start): no method that starts processes can beat this machine's own drift")
    print(f"goal hwprofile <= 2 % at <= 3 s: {'met' if result['met'] else 'NOT met'} "
          f"(1 process {best[0] * 100:.2f} %, 3 processes {best[1] * 100:.2f} %)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
