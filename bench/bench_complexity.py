"""Counting speed: every zoo model x 10 strategies x 3 scales, scaled and counted analytically.

Goal (issue 2): more than 1,000 configs per second. Run: python bench/bench_complexity.py
"""

from __future__ import annotations

import platform
import time

from hwprofile.zoo import complexity, get_spec, model_names, scale

STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr", "wg", "dwgr")
SCALES = (2.0, 4.0, 16.0)


def one_pass() -> int:
    n = 0
    for name in model_names():
        base = get_spec(name)
        for st in STRATEGIES:
            for s in SCALES:
                complexity(scale(base, st, s))
                n += 1
    return n


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    one_pass()  # warm the zoo cache (RegNet generation) outside the timing
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        n = one_pass()
        runs.append((time.perf_counter() - t0, n))
    best = min(t for t, _ in runs)
    median = sorted(t for t, _ in runs)[len(runs) // 2]
    n = runs[0][1]
    import os
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"configs per pass: {n} ({len(model_names())} models x {len(STRATEGIES)} strategies x {len(SCALES)} scales)")
    print(f"median pass: {median * 1e3:.1f} ms -> {n / median:,.0f} configs/s (best {n / best:,.0f}); goal > 1,000")


if __name__ == "__main__":
    main()
