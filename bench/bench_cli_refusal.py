"""How fast ``hwprofile`` refuses bad arguments, beside what loading every command costs (issue 22).

Each case runs in a fresh interpreter (``python -m hwprofile ...`` from this checkout), ``--rounds`` times,
interleaved; the script prints each case's median wall time and its ratio to ``hwprofile --help``, which loads
every subcommand. Run it alone on a quiet machine.

    python bench/bench_cli_refusal.py                # 7 rounds
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "layers --batch 5000": ["layers", "EfficientNet-B0", "--runner", "ort:cpu", "--batch", "5000"],
    "layers --resolution 5000": ["layers", "EfficientNet-B0", "--runner", "ort:cpu", "--resolution", "5000"],
    "layers --iterations 1e9": ["layers", "EfficientNet-B0", "--runner", "ort:cpu", "--iterations", "1000000000"],
    "--help (every command)": ["--help"],
}


def once(argv: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    rc = subprocess.run([sys.executable, "-m", "hwprofile", *argv], cwd=ROOT, capture_output=True).returncode
    return time.perf_counter() - start, rc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    codes: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, argv in CASES.items():
            seconds, codes[name] = once(argv)
            times[name].append(seconds)
    base = statistics.median(times["--help (every command)"])
    print(f"{'case':28s} {'exit':>4s} {'median s':>9s} {'vs --help':>9s}")
    for name in CASES:
        med = statistics.median(times[name])
        print(f"{name:28s} {codes[name]:>4d} {med:9.3f} {med / base:8.2f}x")


if __name__ == "__main__":
    main()
