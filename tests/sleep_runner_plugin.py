"""A plugin runner whose measurement takes a known time, for scheduling tests (issue 24).

It lives outside the hwprofile package and reaches hwprofile only through the plugin registry
(``hwprofile run --runner-plugin sleep=sleep_runner_plugin:SleepRunner``), so a Ray run ships it to the
nodes as it would any user's plugin. A measurement sleeps; it uses no CPU to speak of, so a sweep of it
measures scheduling, not hardware.

Options:
- ``seconds`` (default 2): slept once by each measuring process when it loads the workload;
- ``latency_ms`` (default 1): each timed unit sleeps this long and reports it (so timing stops early).

One measurement then takes ``seconds`` plus the timing protocol's warm-up (0.2 s) and throughput window
(0.5 s), plus starting its process.
"""

from __future__ import annotations

import time
from typing import Any

from hwprofile.runners import Runner
from hwprofile.runners._base import COMMON_OBSERVED_SETTINGS, COMMON_RESULT_SETTINGS

PATH = "sleep_runner_plugin:SleepRunner"


class SleepRunner(Runner):
    name = "sleep"
    timing_method = "scripted"
    modes = ("infer", "train")
    kinds = ("spec", "onnx", "engine")
    input = "module"
    load_estimate_s = 2.0
    option_names = ("seconds", "latency_ms")
    result_settings = {**COMMON_RESULT_SETTINGS, "library": "backend"}
    observed_settings = (*COMMON_OBSERVED_SETTINGS, "options.seconds", "options.latency_ms")

    def load(self, workload) -> None:
        self.workload = workload
        self._latency_ms = float(workload.options.get("latency_ms", 1.0))
        time.sleep(float(workload.options.get("seconds", 2.0)))

    def infer(self) -> None:
        time.sleep(self._latency_ms / 1000)

    def time_once(self) -> float:
        self.infer()
        return self._latency_ms

    def settings(self) -> dict[str, Any]:
        return {"library": "sleep", "threads": 1}
