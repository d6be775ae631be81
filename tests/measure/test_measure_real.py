"""Real runs of every CPU runner on small models: structure and sanity, never absolute times."""

import json
import statistics

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from onnx_model import tiny_onnx  # noqa: E402

from hwprofile.measure import measure
from hwprofile.profile import Measurement, TimingConfig, Workload  # noqa: E402
from hwprofile.zoo import get_spec

FAST = TimingConfig(warmup_iters=3, warmup_s=0.02, min_iters=8, budget_s=0.4, throughput_window_s=0.1)
LATENCY_KEYS = {"median_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "std_ms", "iqr_ms", "cv", "noisy",
                "median_ci_ms", "iterations", "repeats", "timing_method", "samples_ms", "medians_ms"}


def _check(m: Measurement, runner: str, repeats: int = 1) -> None:
    assert m.runner == runner and m.status == "ok", m.reason
    lat = m.latency
    assert LATENCY_KEYS <= set(lat) and lat["timing_method"] == "perf_counter_ns" and lat["repeats"] == repeats
    assert len(lat["samples_ms"]) == repeats and sum(map(len, lat["samples_ms"])) == lat["iterations"] >= 3
    assert all(s > 0 for run in lat["samples_ms"] for s in run)
    assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
    assert lat["median_ci_ms"][0] <= lat["median_ms"] <= lat["median_ci_ms"][1]
    tput = m.throughput
    assert tput["samples_per_s"] > 0 and tput["iterations"] >= 1
    if m.energy and m.energy.get("reason"):  # no meter: a CPU runner's throughput is its timed iterations'
        per = [1000 * len(run) * tput["batch"] / sum(run) for run in lat["samples_ms"]]  # one per process
        assert tput["source"] == "timed iterations" and tput["iterations"] == lat["iterations"]
        assert tput["per_repeat_samples_per_s"] == pytest.approx(per)
        assert tput["samples_per_s"] == pytest.approx(statistics.median(per))
    else:  # an energy window of its own
        assert tput["window_s"] >= 0.1 and "source" not in tput
    mem = m.memory
    assert all(set(v) == {"value_mb", "definition"} and v["definition"] for v in mem.values())
    assert mem["cpu_peak_rss_mb"]["value_mb"] > mem["cpu_baseline_rss_mb"]["value_mb"] > 0
    assert mem["cpu_peak_rss_increase_mb"]["value_mb"] > 0
    assert mem["cpu_run_peak_rss_mb"]["value_mb"] >= mem["cpu_rss_after_load_mb"]["value_mb"] > 0
    assert mem["cpu_run_rss_increase_mb"]["value_mb"] >= 0
    s = m.settings
    assert s["runner"] == runner and s["isolation"] == "forkserver" and s["threads"] == 1
    # the full warm-up count, or (a slow unit on a loaded machine) a warm-up cut short by the budget, by design
    assert s["warmup_iters"][0] >= 3 or (s["warmup_iters"][0] >= 1 and s["warmup_s"][0] >= 0.15), s
    assert s["stop_reasons"][0] in ("ci", "budget", "max_iters")
    assert len(s["foreign_cpu_cores"]) == repeats and all(f >= 0 for f in s["foreign_cpu_cores"])
    # energy over the throughput window: a RAPL reading where powercap is readable, else the reason
    assert m.energy and (m.energy.get("reason") or m.energy["joules_per_image"] >= 0), m.energy
    assert Measurement.from_dict(json.loads(json.dumps(m.to_dict()))) == m


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_torch_cpu(mode):
    w = Workload.from_spec(get_spec("RegNetX-200MF"), batch=2, resolution=64, mode=mode, options={"threads": 1})
    m = measure("torch:cpu", w, FAST)
    _check(m, "torch:cpu")
    assert m.settings["mode"] == mode and m.settings["library"] == "torch"


@pytest.mark.slow
def test_torch_cpu_train_costs_more_memory_than_infer():
    spec = get_spec("RegNetX-200MF")
    runs = {mode: measure("torch:cpu", Workload.from_spec(spec, batch=8, resolution=96, mode=mode,
                                                          options={"threads": 1}), FAST) for mode in ("infer", "train")}
    incr = {k: m.memory["cpu_peak_rss_increase_mb"]["value_mb"] for k, m in runs.items()}
    assert incr["train"] > incr["infer"]  # saved activations and gradients


@pytest.mark.parametrize("iobinding", [False, True])
def test_ort_cpu(tmp_path, iobinding):
    path = tiny_onnx(tmp_path / "tiny.onnx", channels=16)
    w = Workload.from_file(str(path), batch=4, resolution=48, options={"threads": 1, "iobinding": iobinding})
    m = measure("ort:cpu", w, FAST)
    _check(m, "ort:cpu")
    assert m.settings["providers_active"] == ["CPUExecutionProvider"] and m.settings["iobinding"] is iobinding
    assert m.settings["graph_optimization_level"] == "ORT_ENABLE_ALL" and m.settings["inter_op_threads"] == 1


def test_ort_cpu_unsupported_combinations_are_statuses(tmp_path):
    path = str(tiny_onnx(tmp_path / "tiny.onnx"))
    train = measure("ort:cpu", Workload.from_file(path, 2, 16, mode="train"), FAST)
    assert (train.status, train.reason) == ("unsupported", "ort:cpu does not support mode 'train' (supports: infer)")
    fixed = str(tiny_onnx(tmp_path / "fixed.onnx", fixed_batch=1))
    batch = measure("ort:cpu", Workload.from_file(fixed, 2, 16), FAST)
    assert batch.status == "unsupported" and "fixed batch 1" in batch.reason
    missing = measure("ort:cpu", Workload.from_file(str(tmp_path / "none.onnx"), 2, 16), FAST)
    assert missing.status == "failed" and missing.reason.count("\n") == 0


def test_repeats_on_torch_cpu():
    w = Workload.from_spec(get_spec("RegNetX-200MF"), batch=1, resolution=32, options={"threads": 1})
    m = measure("torch:cpu", w, TimingConfig(warmup_iters=2, min_iters=5, budget_s=0.15, repeats=2,
                                             throughput_window_s=0.05))
    _check(m, "torch:cpu", repeats=2)
    assert len(m.latency["medians_ms"]) == 2 and m.latency["repeat_spread"] >= 0
