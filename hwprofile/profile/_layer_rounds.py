"""Per-layer times measured in rounds, each round of profiled runs between two blocks of clean runs.

A machine's speed drifts (a shared VM's neighbours come and go). When the clean latency is measured once
before all profiled runs, drift between the phases moves the layer sum's share of the clean latency by as much
as it moves the machine. Alternating them (clean, profiled, clean, profiled, ..., clean) puts both under the
same drift: the clean latency of the profiled rounds is the mean, over rounds, of the medians of the clean
blocks before and after each round (linear drift cancels exactly), and each layer's time is the mean of its
rounds' times. Pure functions over what the runners return.
"""

from __future__ import annotations

import statistics
from typing import Any

#: profiled runs per round at least (a round's typical runs are its interquartile half)
MIN_PER_ROUND = 10
#: rounds at most
MAX_ROUNDS = 3


def layer_rounds(iterations: int) -> list[int]:
    """The profiled runs of each round: ``iterations`` split into up to :data:`MAX_ROUNDS` rounds of at least
    :data:`MIN_PER_ROUND` runs (one round below that), the first rounds taking the remainder."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    n = max(1, min(MAX_ROUNDS, iterations // MIN_PER_ROUND))
    return [iterations // n + (1 if i < iterations % n else 0) for i in range(n)]


def bracketed_clean(block_medians: list[float], rounds: int) -> float:
    """The clean latency at the time of ``rounds`` profiled rounds, from the medians of the clean blocks around
    them (``block_medians[0]`` before round 1, ``block_medians[i]`` after round i): the mean over rounds of the
    mean of the block before and the block after (the block before alone where none was measured after)."""
    if not block_medians or rounds < 1:
        raise ValueError("needs the clean block before the first round and at least one round")
    around = []
    for i in range(rounds):
        before = block_medians[min(i, len(block_medians) - 1)]
        after = block_medians[i + 1] if i + 1 < len(block_medians) else before
        around.append((before + after) / 2)
    return statistics.fmean(around)


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One breakdown from the breakdowns a runner returned for each round (``layer_times``): each row's
    ``time_ms`` and the ``profiled_run_ms`` are means over rounds (a row a round lacks counts 0 there, as within a
    round), ``median_ms`` the median of the rounds' medians, ``iterations`` their sum; notes are kept once each;
    every other field is the last round's."""
    if not rounds:
        raise ValueError("no profiled round")
    if len(rounds) == 1:
        return {**rounds[0], "rounds": 1}
    n = len(rounds)
    first: dict[str, dict] = {}
    times: dict[str, float] = {}
    medians: dict[str, list[float]] = {}
    for out in rounds:
        for row in out.get("rows") or []:
            name = row["name"]
            first.setdefault(name, row)
            times[name] = times.get(name, 0.0) + float(row["time_ms"]) / n
            if row.get("median_ms") is not None:
                medians.setdefault(name, []).append(float(row["median_ms"]))
    rows = []
    for name, row in first.items():
        merged = {**row, "time_ms": times[name]}
        if name in medians:
            merged["median_ms"] = statistics.median(medians[name])
        rows.append(merged)
    totals = [float(t) for t in (out.get("profiled_run_ms") for out in rounds) if t is not None]
    notes = list(dict.fromkeys(note for out in rounds for note in out.get("notes") or []))
    method = rounds[-1].get("method") or ""
    return {**rounds[-1], "rows": rows, "rounds": n, "notes": notes,
            "iterations": sum(int(out.get("iterations") or 0) for out in rounds),
            "profiled_run_ms": statistics.fmean(totals) if len(totals) == n else None,
            "method": f"{method}; {n} rounds, each between two blocks of clean runs, averaged" if method else method}
