"""End-to-end GPU runs: torch:cuda, ort:cuda, ort:tensorrt and trt on small models (skipped without a GPU)."""

import sys
from pathlib import Path

import pytest

from hwprofile.measure import measure
from hwprofile.profile import TimingConfig, Workload
from hwprofile.runners import availability
from hwprofile.zoo import get_spec

sys.path.insert(0, str(Path(__file__).parents[1] / "measure"))
from onnx_model import tiny_onnx  # noqa: E402

FAST = TimingConfig(warmup_iters=3, warmup_s=0.05, min_iters=10, budget_s=0.5, throughput_window_s=0.2)


def _need(runner):
    ok, why = availability(runner, "cuda:0")
    if not ok:
        pytest.skip(why)


def _assert_ok(m, methods=("cuda_event",)):
    assert m.status == "ok", m.reason
    lat = m.latency
    assert lat["median_ms"] > 0 and lat["iterations"] == len(lat["samples_ms"][0]) >= 3
    assert lat["timing_method"] in methods and m.settings["isolation"] == "spawn"
    assert m.throughput["samples_per_s"] > 0


@pytest.mark.gpu
@pytest.mark.parametrize("mode,precision,options", [("infer", "fp32", {}), ("train", "fp32", {}),
                                                     ("infer", "fp16", {"channels_last": True}),
                                                     ("infer", "fp32", {"cuda_graphs": True})])
def test_torch_cuda(mode, precision, options):
    _need("torch:cuda")
    w = Workload.from_spec(get_spec("RegNetX-200MF"), batch=4, resolution=64, mode=mode, precision=precision,
                           options=options)
    m = measure("torch:cuda", w, FAST, timeout_s=300, device="cuda:0")
    _assert_ok(m)
    assert m.memory["torch_max_allocated_mb"]["value_mb"] > 0
    assert m.settings["gpu"] and m.settings["cudnn_benchmark"] is True


@pytest.mark.gpu
def test_ort_cuda_runs_on_cuda_with_device_iobinding(tmp_path):
    _need("ort:cuda")
    path = tiny_onnx(tmp_path / "tiny.onnx")
    m = measure("ort:cuda", Workload.from_file(str(path), batch=4, resolution=64), FAST, timeout_s=300,
                device="cuda:0")
    _assert_ok(m, ("cuda_event", "perf_counter_ns"))  # events need torch built with CUDA
    assert m.settings["providers_active"][0] == "CUDAExecutionProvider" and m.settings["iobinding"] is True
    assert m.settings["provider_options"]["arena_extend_strategy"] == "kSameAsRequested"
    placed = m.settings["node_placement"]
    assert placed.get("by_provider", {}).get("CUDAExecutionProvider", 0) >= 1, placed


@pytest.mark.gpu
@pytest.mark.trt
def test_ort_tensorrt_builds_and_caches_its_engine(tmp_path):
    _need("ort:tensorrt")
    path = tiny_onnx(tmp_path / "tiny.onnx")
    cache = tmp_path / "cache"
    w = Workload.from_file(str(path), batch=2, resolution=32, options={"trt_cache_dir": str(cache)})
    m = measure("ort:tensorrt", w, FAST, timeout_s=600, device="cuda:0")
    _assert_ok(m, ("cuda_event", "perf_counter_ns"))  # events need torch built with CUDA
    assert m.settings["providers_active"][0] == "TensorrtExecutionProvider"
    assert any(cache.iterdir()), "the TensorRT provider wrote no engine cache"


def _build_engine(onnx_path: Path, engine_path: Path) -> None:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path)), [str(parser.get_error(i)) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 32, 32))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None
    engine_path.write_bytes(bytes(plan))


@pytest.mark.gpu
@pytest.mark.trt
def test_trt_engine(tmp_path):
    _need("trt")
    engine = tmp_path / "tiny.engine"
    _build_engine(tiny_onnx(tmp_path / "tiny.onnx"), engine)
    m = measure("trt", Workload.from_file(str(engine), batch=2, resolution=32), FAST, timeout_s=300, device="cuda:0")
    _assert_ok(m)
    assert m.memory["trt_engine_device_memory_mb"]["value_mb"] >= 0
    assert m.settings["tensor_shapes"]["input"] == [2, 3, 32, 32]


@pytest.mark.gpu
@pytest.mark.trt
def test_trt_per_batch_engine_runs_every_batch(tmp_path):
    """to_tensorrt builds one optimization profile per batch size; the runner must pick the right one."""
    _need("trt")
    from exporters import to_tensorrt

    engine = to_tensorrt(str(tiny_onnx(tmp_path / "fixed.onnx", resolution=32)), batch_sizes=[1, 4],
                         cache_dir=tmp_path / "trt")
    for batch, profile in ((1, 0), (4, 1)):
        m = measure("trt", Workload.from_file(engine.path, batch=batch, resolution=32), FAST, timeout_s=300,
                    device="cuda:0")
        _assert_ok(m)
        assert m.settings["optimization_profile"] == profile and m.settings["tensor_shapes"]["input"][0] == batch


@pytest.mark.gpu
def test_gpu_peaks_include_tf32_and_leave_the_flag_alone():
    _need("torch:cuda")
    import torch

    from hwprofile.measure import peaks
    from hwprofile.runners import tf32_settings

    before = tf32_settings(torch)
    p = peaks("cuda:0", seconds=0.05, matmul_n=1024, copy_mb=64)
    assert tf32_settings(torch) == before
    assert p["matmul_fp16"]["flops_per_s"] > 0 and p["matmul_tf32"]["flops_per_s"] > 0 and p["copy"]["gb_per_s"] > 0
