"""spec -> ONNX -> TensorRT engine -> record, in a real sweep, through the strict TensorRT stand-in.

The export (torch -> verified ONNX), the engine build (exporters.to_tensorrt in a child, one
optimization profile per swept batch size, cached), and the measurement (the trt runner in a
spawned child: deserialize, select the profile, bind, execute_async_v3, time) all run for real;
only TensorRT (tests/fake_tensorrt.py) and the CUDA stream/events/buffers are stand-ins, installed
in the children by tests/fake_trt_env.py. The parent is told one GPU exists.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

import fake_trt_env  # noqa: E402
from hwprofile import env
from hwprofile.profile import Profile
from hwprofile.runners._trt import TrtRunner
from hwprofile.sweep import SweepConfig, run_sweep

FAST = {"warmup_iters": 2, "warmup_s": 0.0, "min_iters": 5, "budget_s": 0.1, "throughput_window_s": 0.05}


@pytest.fixture
def fake_gpu_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", fake_trt_env.child_pythonpath(tmp_path / "site"))
    monkeypatch.setattr(env, "gpu_names", lambda: ["Fake GPU 80GB"])
    monkeypatch.setattr(TrtRunner, "missing", classmethod(lambda cls, index: None))


@pytest.mark.slow
def test_trt_sweep_exports_builds_an_engine_and_measures(fake_gpu_machine, tmp_path):
    config = SweepConfig(device="cuda:0", runners=("trt",), models=("RegNetX-200MF",), scales=(1.0,),
                         batch_sizes=(1, 4), timing=FAST, timeout_s=240, cache_dir=str(tmp_path / "cache"), retries=0)
    prof, path, _ = run_sweep(config, tmp_path / "p.json", quiet=True, peaks=False)
    recs = sorted(Profile.load(path).records, key=lambda r: r.batch)
    assert [(r.runner, r.batch, r.status) for r in recs] == [("trt", 1, "ok"), ("trt", 4, "ok")], \
        [r.reason for r in recs]
    first, second = recs
    # one engine for the sweep, built once (not inside any latency), with a profile per batch size
    assert first.prepare["input"] == "engine" and not first.prepare["cached"] and first.prepare["build_s"] >= 0
    assert second.prepare["cached"] and second.prepare["build_s"] is None
    assert second.prepare["artifact"] == first.prepare["artifact"]
    record = json.loads((tmp_path / "cache" / "tensorrt" /
                         first.prepare["artifact"].rsplit("/", 1)[-1].replace(".engine", ".json")).read_text())
    assert [p["min"][0] for p in record["profiles"]] == [1, 4] and record["precision"] == "fp32"
    # the trt runner ran the engine: the right profile, the swept shape, CUDA-event timing
    assert [r.settings.to_dict()["optimization_profile"] for r in recs] == [0, 1]
    assert second.settings.to_dict()["tensor_shapes"]["input"] == [4, 3, 224, 224]
    assert second.settings.to_dict()["library"] == "tensorrt" and second.settings.to_dict()["isolation"] == "spawn"
    assert first.latency.timing_method == "cuda_event" and first.latency.median_ms > 0
    assert "trt_engine_device_memory_mb" in first.memory


@pytest.mark.slow
def test_a_users_onnx_file_becomes_an_engine(fake_gpu_machine, tmp_path):
    """ONNX -> engine -> record for a file made elsewhere (no export): one profile per batch size."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "measure"))
    from onnx_model import tiny_onnx

    model = tiny_onnx(tmp_path / "tiny.onnx", resolution=16)
    config = SweepConfig(device="cuda:0", runners=("trt",), models=(str(model),), batch_sizes=(2, 3), timing=FAST,
                         timeout_s=240, cache_dir=str(tmp_path / "cache"), retries=0)
    prof, _, _ = run_sweep(config, tmp_path / "p.json", quiet=True, peaks=False)
    recs = sorted(prof.records, key=lambda r: r.batch)
    assert [(r.model, r.batch, r.status, r.source) for r in recs] == [("tiny.onnx", 2, "ok", "onnx"),
                                                                      ("tiny.onnx", 3, "ok", "onnx")], \
        [r.reason for r in recs]
    assert [r.settings.to_dict()["optimization_profile"] for r in recs] == [0, 1]
    assert recs[1].settings.to_dict()["tensor_shapes"] == {"input": [3, 3, 16, 16], "logits": [3, 10]}
    assert recs[0].prepare["input"] == "engine" and recs[0].prepare["artifact"].endswith(".engine")


@pytest.mark.slow
def test_run_layers_on_trt_builds_a_detailed_engine_and_joins_every_layer(fake_gpu_machine, tmp_path):
    """run --layers with trt: the engine is built with detailed profiling verbosity (its own cache key), so the
    inspector names the ONNX nodes of every fused kernel; the IProfiler's device times become the record's
    breakdown, measured after its timing, which stands on its own."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from layer_fixtures import tiny_cnn

    model = tiny_cnn(tmp_path / "tiny.onnx", res=16)
    config = SweepConfig(device="cuda:0", runners=("trt",), models=(model,), batch_sizes=(1,), timing=FAST,
                         timeout_s=240, cache_dir=str(tmp_path / "cache"), layers=4, retries=0)
    prof, _, _ = run_sweep(config, tmp_path / "p.json", quiet=True, peaks=False)
    (rec,) = prof.records
    assert rec.status == "ok" and rec.latency.median_ms > 0, rec.reason
    built = json.loads(Path(rec.prepare["artifact"]).with_suffix(".json").read_text())
    assert built["profiling_verbosity"] == "detailed"
    assert rec.settings.to_dict()["engine_build"]["profiling_verbosity"] == "detailed"
    bd = rec.layers
    assert bd.error is None and bd.time_source == "gpu" and bd.end_to_end_ms > 0
    joined = {n for r in bd.rows for n in r.onnx_nodes}
    assert {r.name for r in bd.rows} == {f"Kernel_{i}" for i in range(5)}  # opaque names, joined by metadata
    assert joined == {"conv1", "relu1", "dw", "relu2", "pw", "add", "gap", "flat", "fc"}
    assert "peaks could not be measured" in bd.peaks["error"]  # no GPU here: no roofline, the times stand
