#!/usr/bin/env python3
"""The power table of docs/measurement.md: how often each candidate sweep design gets the verdict right.

For each design (EfficientNet-B0 scaled by some strategies at some scales, the real counts) and noise sigma,
``--seeds`` synthetic sweeps per truth (latency exactly ∝ acts, ∝ flops, ∝ flops^0.5·acts^0.5, constant;
times lognormal noise), each with 4 rows (ort:cpu and torch:cpu at batch 1 and 8), are answered by
``hwprofile.analysis.answer`` (hwprofile.analysis._power.simulate). Simulated numbers, not measurements; seeded, so
the table is the same every run. ``est. s`` is ``run --plan``'s rough wall-time estimate on CPU with both
CPU runners (a planning figure, not a measurement).

    .venv/bin/python scripts/verdict_power.py --seeds 50 > /tmp/power.md
"""

from __future__ import annotations

import argparse

from hwprofile.analysis import design_se
from hwprofile.analysis._power import design_points, simulate
from hwprofile.sweep import SweepConfig, make_plan
from hwprofile.sweep._config import DEFAULT_SCALES, DEFAULT_STRATEGIES

DESIGNS = {
    "previous default: d, w, r, dw, dwr, dWr x {1, 4}": (("d", "w", "r", "dw", "dwr", "dWr"), (1, 4)),
    "**default: w, r, dWr x {1, 4, 16}**": (DEFAULT_STRATEGIES, DEFAULT_SCALES),
    "w, r x {1, 4, 8, 16}": (("w", "r"), (1, 4, 8, 16)),
    "w, r, dWr x {1, 4, 8}": (("w", "r", "dWr"), (1, 4, 8)),
    "w, r, dWr x {1, 16}": (("w", "r", "dWr"), (1, 16)),
    "w, r, d, dWr x {1, 4, 16}": (("w", "r", "d", "dWr"), (1, 4, 16)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50, help="synthetic sweeps per truth and cell (default 50)")
    ap.add_argument("--sigmas", default="0.05,0.1,0.2", help="noise SDs of log latency (default 0.05,0.1,0.2)")
    args = ap.parse_args()
    sigmas = [float(s) for s in args.sigmas.split(",")]
    print("| design | models | SE(δ)/σ | est. s | σ | ∝ acts | ∝ flops | ∝ flops^0.5·acts^0.5 | constant "
          "| wrong metric |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (strategies, scales) in DESIGNS.items():
        points = design_points("EfficientNet-B0", strategies, scales)
        se = design_se([p.flops for p in points], [p.acts for p in points])
        est = make_plan(SweepConfig(device="cpu", runners=("torch:cpu", "ort:cpu"), strategies=tuple(strategies),
                                    scales=tuple(float(s) for s in scales))).estimated_s
        for sigma in sigmas:
            power = simulate(points, sigma=sigma, seeds=args.seeds)
            cells = " | ".join(f"{100 * power[t].right:.0f}%" for t in ("acts", "flops", "both", "constant"))
            wrong = sum(p.wrong_metric for p in power.values())
            print(f"| {name} | {len(points)} | {se.se_delta:.2f} | {est:.0f} | {sigma:g} | {cells} | {wrong} |")


if __name__ == "__main__":
    main()
