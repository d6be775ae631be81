"""The one table of input bounds: every number a user gives hwprofile is checked here, before any work.

``run``, ``run --plan``, ``check``, ``layers``, the Python API and the scaling code read their limits from
:data:`BOUNDS`; docs/profiles.md ("Input limits") lists the same table (tests/test_bounds.py keeps the two
equal). A value outside its bound is a :class:`~hwprofile.errors.ConfigError` (exit 2) whose one line names
the flag or parameter, the value and the bound. Zero is a value like any other: where a positive number is
required, 0 is refused, never read as "not given".

``threads`` is bounded by this machine's logical cores (:func:`machine_cores`): more threads than cores
only oversubscribe them, and a huge count makes ONNX Runtime and torch allocate per-thread state (a
``--threads 100000`` once held 9.4 GB).
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any

from hwprofile.errors import ConfigError


def shown(value, limit: int = 60) -> str:
    """``repr(value)`` on one line and at most ``limit`` characters, for an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def machine_cores() -> int:
    """This machine's logical CPU count (at least 1)."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Bound:
    """An allowed range: ``low`` .. ``high`` (``high`` None: this machine's cores); ``low_open`` excludes ``low``."""

    name: str
    low: float
    high: float | None
    integer: bool
    unit: str
    means: str
    low_open: bool = False

    @property
    def upper(self) -> float:
        return float(machine_cores()) if self.high is None else self.high

    def text(self) -> str:
        """``an integer from 1 to 4096`` / ``a number of seconds > 0 and <= 604800``."""
        hi = f"{self.upper:g}" + (" (this machine's cores)" if self.high is None else "")
        unit = f" of {self.unit}" if self.unit else ""
        if self.integer:
            return f"an integer from {self.low:g} to {hi}"
        lo = f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
        return f"a finite number{unit} {lo} and <= {hi}"

    def check(self, value: Any, label: str) -> float:
        """``value`` as an int (integer bounds) or float, or a one-line ConfigError naming ``label``."""
        bad = ConfigError(f"{label} {shown(value)}: expected {self.text()}")
        number: float
        if isinstance(value, bool):
            raise bad
        if self.integer:
            if isinstance(value, numbers.Integral):
                number = int(value)
            elif isinstance(value, float) and math.isfinite(value) and value == int(value):
                number = int(value)
            else:
                raise bad
        else:
            if not isinstance(value, numbers.Real):
                raise bad
            try:
                number = float(value)
            except OverflowError:  # an int past any float: out of every bound
                raise bad from None
            if not math.isfinite(number):
                raise bad
        if number < self.low or (self.low_open and number == self.low) or number > self.upper:
            raise bad
        return number


DAY_S = 86400.0

#: name -> Bound. Integer counts first, then seconds.
BOUNDS: dict[str, Bound] = {b.name: b for b in (
    Bound("batch", 1, 4096, True, "", "images per batch (run --batch-sizes, layers --batch, export --batch)"),
    Bound("resolution", 1, 4096, True, "", "input side in pixels (layers --resolution, complexity(resolution=))"),
    Bound("scale", 0, 1e4, False, "", "flops scale factor s (--scale, --scales); the paper scales to 16",
          low_open=True),
    Bound("iterations", 1, 100_000, True, "", "timed iterations of one measurement"),
    Bound("warmup_iterations", 0, 100_000, True, "", "warm-up iterations of one measurement"),
    Bound("fixed_iterations", 3, 100_000, True, "", "a fixed count of timed iterations (run --iterations N); at "
          "least 3, so a record has a spread to judge its noise by"),
    Bound("layer_runs", 4, 1000, True, "", "profiled runs of a layer breakdown (layers --iterations, run --layers)"),
    Bound("repeats", 1, 100, True, "", "processes per measurement (--repeats); check --remeasure rounds"),
    Bound("threads", 1, None, True, "", "CPU threads of a runner (--threads, --option threads=N)"),
    Bound("retries", 0, 100, True, "", "re-measurements of a disturbed record (--retries)"),
    Bound("budget", 0, 30 * DAY_S, False, "seconds", "the whole sweep's time (--budget)", low_open=True),
    Bound("seconds_per_config", 0, DAY_S, False, "seconds", "one measurement's timed phase (--seconds-per-config)",
          low_open=True),
    Bound("retry_backoff", 0, DAY_S, False, "seconds", "first back-off before re-measuring (--retry-backoff)"),
)}


def check(name: str, value, label: str):
    """``BOUNDS[name].check(value, label)``: the value, or a ConfigError naming ``label``."""
    return BOUNDS[name].check(value, label)


def arg(name: str, label: str):
    """An argparse ``type`` for ``BOUNDS[name]``: parses the text and checks it; argparse reports a value out of
    bounds as ``argument --batch: '5000': expected an integer from 1 to 4096`` (exit 2)."""
    bound = BOUNDS[name]

    def parse(text: str):
        try:
            value = int(text) if bound.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {bound.text()}") from None
        try:
            return bound.check(value, label)
        except ConfigError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {bound.text()}") from None

    parse.__name__ = label  # argparse names the type in its own messages
    return parse
