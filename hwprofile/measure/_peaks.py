"""Measured device peaks: dense matmul FLOP/s and copy bandwidth.

They let a result state the fraction of the hardware a model reached. hwprofile's flops are
multiply-adds, so a roofline compares ``2 * flops`` against ``matmul_*_flops_per_s``. Copy
bandwidth counts the bytes read plus the bytes written.

A peak is an upper bound that other processes only lower. So peaks are measured with the thread count
they are compared with (``threads``: a 1-thread record against 1-thread peaks), the CPU time other
processes took while they ran is read (``foreign_cpu_cores``: all busy CPU time from /proc/stat minus
this process's own, per second), and on a CPU they are measured again, after a pause, while that load
exceeds :data:`BUSY_CORES`, up to ``attempts`` times; each rate keeps its best attempt. Peaks still
measured under load are marked ``disturbed``: readers flag the shares computed from them.
"""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any

from hwprofile._lazy import heavy
from hwprofile.measure._isolation import cpu_busy_s
from hwprofile.runners import resolve_device, tf32_settings

#: CPU cores other processes may keep busy while peaks are measured before they are measured again / flagged
BUSY_CORES = 0.25
ATTEMPTS = 3
PAUSE_S = 0.5


def _timer(torch, device):
    if device.type == "cuda":
        def clock() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()
    else:
        clock = time.perf_counter
    return clock


def _rates(fn, work: float, seconds: float, clock, min_reps: int = 3) -> list[float]:
    """Work per second of each call of ``fn`` (after two warm-up calls) for about ``seconds``."""
    fn()
    fn()
    rates: list[float] = []
    start = time.perf_counter()
    while len(rates) < min_reps or time.perf_counter() - start < seconds:
        t0 = clock()
        fn()
        rates.append(work / (clock() - t0))
    return rates


def _matmul(torch, device, n: int, dtype, seconds: float, clock) -> dict:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    rates = _rates(lambda: torch.matmul(a, b, out=out), 2.0 * n**3, seconds, clock)
    return {"flops_per_s": statistics.median(rates), "flops_per_s_best": max(rates), "n": n,
            "repeats": len(rates)}


def _tf32_matmul(torch, device, n: int, seconds: float, clock) -> dict:
    """fp32 matmul with TF32 allowed: the peak fp32 convolutions reach, since cuDNN allows TF32 by
    default (torch.backends.cudnn.allow_tf32), while the plain fp32 matmul above does not."""
    matmul = torch.backends.cuda.matmul
    # torch >= 2.9: the fp32_precision setting (setting the legacy flag after it was used raises)
    name, value = ("fp32_precision", "tf32") if hasattr(matmul, "fp32_precision") else ("allow_tf32", True)
    before = getattr(matmul, name)
    setattr(matmul, name, value)
    try:
        return _matmul(torch, device, n, torch.float32, seconds, clock)
    finally:
        setattr(matmul, name, before)


def _copy(torch, device, size_mb: int, seconds: float, clock) -> dict:
    count = size_mb * 2**20 // 4
    src = torch.ones(count, device=device, dtype=torch.float32)
    dst = torch.empty_like(src)
    rates = _rates(lambda: dst.copy_(src), 2.0 * count * 4 / 1e9, seconds, clock)
    return {"gb_per_s": statistics.median(rates), "gb_per_s_best": max(rates), "size_mb": size_mb,
            "repeats": len(rates)}


def _own_cpu_s() -> float:
    """CPU seconds this process (all its threads) has used."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def foreign_cores(busy0: float | None, own0: float, wall_s: float) -> float | None:
    """Average CPU cores other processes kept busy since ``busy0`` (/proc/stat) and ``own0`` (this process)."""
    busy1 = cpu_busy_s()
    if busy0 is None or busy1 is None or wall_s <= 0:
        return None
    return round(max(0.0, busy1 - busy0 - (_own_cpu_s() - own0)) / wall_s, 3)


def _tests(torch, dev, gpu: bool, n: int, size_mb: int, seconds: float, clock) -> dict:
    out: dict[str, Any] = {"matmul_fp32": _matmul(torch, dev, n, torch.float32, seconds, clock)}
    if gpu:
        out["matmul_fp16"] = _matmul(torch, dev, n, torch.float16, seconds, clock)
        out["tf32_matmul_allowed"] = tf32_settings(torch).get("matmul_allow_tf32")
        out["matmul_tf32"] = _tf32_matmul(torch, dev, n, seconds, clock)
    out["copy"] = _copy(torch, dev, size_mb, seconds, clock)
    return out


def _best(a: dict, b: dict) -> dict:
    """Per test, the attempt with the higher best rate (a peak is an upper bound)."""
    out = dict(a)
    for key, value in b.items():
        if not isinstance(value, dict):
            out.setdefault(key, value)
            continue
        rate = "gb_per_s_best" if key == "copy" else "flops_per_s_best"
        if key not in out or value[rate] > out[key][rate]:
            out[key] = value
    return out


def peaks(device: str = "cpu", *, seconds: float = 0.5, matmul_n: int | None = None,
          copy_mb: int | None = None, threads: int | None = None, attempts: int = ATTEMPTS,
          pause_s: float = PAUSE_S) -> dict:
    """Dense matmul FLOP/s (fp32; fp16 and TF32 too on GPU) and copy bandwidth of ``device``, measured now with
    ``threads`` CPU threads (default: torch's), again while other processes keep the CPU busy (see the module
    docstring)."""
    torch = heavy("torch")


    name = resolve_device(device)
    dev = torch.device(name)
    gpu = dev.type == "cuda"
    if gpu:
        torch.cuda.set_device(dev)
    if threads:
        torch.set_num_threads(int(threads))
    clock = _timer(torch, dev)
    n = matmul_n or (8192 if gpu else 2048)
    size_mb = copy_mb or (1024 if gpu else 256)
    best: dict[str, Any] = {}
    loads: list[float | None] = []
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(pause_s * attempt)
        busy0, own0, t0 = cpu_busy_s(), _own_cpu_s(), time.perf_counter()
        best = _best(best, _tests(torch, dev, gpu, n, size_mb, seconds, clock))
        loads.append(foreign_cores(busy0, own0, time.perf_counter() - t0))
        if gpu or loads[-1] is None or loads[-1] <= BUSY_CORES:
            break
    known = [x for x in loads if x is not None]
    foreign = min(known) if known else None
    return {"device": name, "threads": torch.get_num_threads(), "timing": "perf_counter" + (
        " after torch.cuda.synchronize" if gpu else ""), "seconds_per_test": seconds,
        "note": "flops here count 2 per multiply-add; compare against 2 x hwprofile flops", **best,
        "attempts": len(loads), "foreign_cpu_cores": foreign,
        "disturbed": bool(not gpu and foreign is not None and foreign > BUSY_CORES)}
