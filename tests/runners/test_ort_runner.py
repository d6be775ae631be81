"""In-process lifecycle of the ort:cpu runner, its IOBinding path and the provider check."""

import sys
import types
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
sys.path.insert(0, str(Path(__file__).parents[1] / "measure"))

from onnx_model import tiny_onnx  # noqa: E402

from hwprofile import env  # noqa: E402
from hwprofile.profile import Workload  # noqa: E402
from hwprofile.runners import Unsupported  # noqa: E402
from hwprofile.runners import _ort as ort_runner  # noqa: E402
from hwprofile.runners._ort import OrtCpuRunner, ProviderFallback, check_provider  # noqa: E402
from hwprofile.runners._ort_gpu import OrtCudaRunner, OrtTensorrtRunner  # noqa: E402


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    return str(tiny_onnx(tmp_path_factory.mktemp("ort") / "tiny.onnx"))


def _run(path, **options):
    with OrtCpuRunner() as runner:
        runner.load(Workload.from_file(path, batch=2, resolution=16, options={"threads": 1, **options}))
        runner.infer()
        out = runner._io.copy_outputs_to_cpu()[0] if runner._iobinding else runner.session.run(None, runner.feed)[0]
        return out, runner.settings(), runner.time_once()


def test_session_settings_are_explicit_and_recorded(onnx_path):
    out, settings, ms = _run(onnx_path)
    assert out.shape == (2, 10) and ms > 0
    assert settings["providers_active"][0] == "CPUExecutionProvider"
    assert settings["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert settings["execution_mode"] == "ORT_SEQUENTIAL"
    assert (settings["threads"], settings["inter_op_threads"]) == (1, 1)
    assert settings["cpu_mem_arena"] is True and settings["mem_pattern"] is True and settings["iobinding"] is False


def test_iobinding_path_gives_the_same_output(onnx_path):
    plain, _, _ = _run(onnx_path)
    bound, settings, _ = _run(onnx_path, iobinding=True, cpu_mem_arena=False, mem_pattern=False)
    assert settings["iobinding"] is True and settings["cpu_mem_arena"] is False and settings["mem_pattern"] is False
    np.testing.assert_array_equal(plain, bound)
    assert np.std(plain) > 0


def test_silent_cpu_fallback_is_an_error():
    check_provider("ort:cuda", "CUDAExecutionProvider", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with pytest.raises(ProviderFallback, match="ort:cuda asked for CUDAExecutionProvider but the session runs on "
                                               "CPUExecutionProvider"):
        check_provider("ort:cuda", "CUDAExecutionProvider", ["CPUExecutionProvider"])


def test_fallback_detected_on_a_real_session(onnx_path, monkeypatch):
    """A CUDA runner on a CPU-only onnxruntime gets a CPU session: load must refuse it."""
    runner = OrtCudaRunner("cuda:0")
    monkeypatch.setattr(runner, "_make_stream", lambda: None)
    monkeypatch.setattr(runner, "_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ProviderFallback, match="runs on CPUExecutionProvider"):
        runner.load(Workload.from_file(onnx_path, batch=1, resolution=16))


def test_input_checks(tmp_path, onnx_path):
    fixed = str(tiny_onnx(tmp_path / "fixed.onnx", fixed_batch=4))
    with pytest.raises(Unsupported, match="fixed batch 4"):
        OrtCpuRunner().load(Workload.from_file(fixed, batch=2, resolution=16))
    with pytest.raises(Unsupported, match="takes float32 but precision fp16"):
        OrtCpuRunner().load(Workload.from_file(onnx_path, batch=1, resolution=16, precision="fp16"))
    assert "does not support mode 'train'" in OrtCpuRunner.unsupported_reason(
        Workload.from_file(onnx_path, 1, 16, mode="train"))


def test_tensorrt_provider_options(onnx_path, tmp_path, monkeypatch):
    monkeypatch.setattr(env, "ort_tensorrt_major", lambda: 10)  # weak typing: trt_fp16_enable converts
    runner = OrtTensorrtRunner("cuda:0")
    runner.workload = Workload.from_file(onnx_path, 1, 16, precision="fp16", options={"trt_cache_dir": str(tmp_path)})
    runner._stream = None
    providers = runner._providers()
    name, trt = providers[0]
    assert name == "TensorrtExecutionProvider" and providers[1][0] == "CUDAExecutionProvider"
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_engine_cache_path"] == str(tmp_path)
    assert trt["trt_fp16_enable"] == "True" and providers[-1] == "CPUExecutionProvider"
    runner._stream = types.SimpleNamespace(cuda_stream=1234)
    trt, cuda = runner._providers()[0][1], runner._providers()[1][1]
    assert trt["user_compute_stream"] == "1234" and "has_user_compute_stream" not in trt  # TRT's parser rejects it
    assert cuda["user_compute_stream"] == "1234" and cuda["has_user_compute_stream"] == "1"


def test_node_placement_counts_the_nodes_each_provider_ran(onnx_path):
    import onnx

    with OrtCpuRunner() as runner:
        runner.load(Workload.from_file(onnx_path, batch=2, resolution=16, options={"threads": 1}))
        placed = runner.node_placement()
    assert set(placed["by_provider"]) == {"CPUExecutionProvider"} and placed["elsewhere"] == {}
    assert 1 <= placed["by_provider"]["CPUExecutionProvider"] <= len(onnx.load(onnx_path).graph.node)
    # as a GPU runner reads it: every node that ran on CPU is listed by op type
    with OrtCpuRunner() as runner:
        runner.load(Workload.from_file(onnx_path, batch=2, resolution=16, options={"threads": 1}))
        runner.provider = "CUDAExecutionProvider"
        runner._providers = lambda: ["CPUExecutionProvider"]
        elsewhere = runner.node_placement()["elsewhere"]
    assert elsewhere and all(k.endswith(" on CPUExecutionProvider") for k in elsewhere)
    assert sum(elsewhere.values()) == placed["by_provider"]["CPUExecutionProvider"]


def test_gpu_runner_makes_its_stream_before_the_placement_session(onnx_path, monkeypatch):
    """Both sessions' provider options name the runner's stream, so it must exist before node_placement
    runs; it used to be made afterwards, and the AttributeError hid every placement as "unknown"."""
    import onnxruntime as ort

    real, seen, streams = ort.InferenceSession, [], []

    def session(path, so, providers):
        seen.append(providers)
        return real(path, so, providers=["CPUExecutionProvider"])  # onnxruntime here has no CUDA

    def make_stream(self):
        streams.append(types.SimpleNamespace(cuda_stream=77))
        return streams[-1]

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(OrtCudaRunner, "_make_stream", make_stream)
    monkeypatch.setattr(OrtCudaRunner, "_bind", lambda self, ort, name, x: None)  # no CUDA OrtValue here
    monkeypatch.setattr(ort_runner, "check_provider", lambda *a: None)
    runner = OrtCudaRunner("cuda:0")
    runner.load(Workload.from_file(onnx_path, batch=2, resolution=16, options={"threads": 1}))
    assert "unknown" not in runner._placement, runner._placement
    assert runner._placement["by_provider"]["CPUExecutionProvider"] >= 1 and runner._placement["elsewhere"]
    assert len(streams) == 1 and [p[0][1]["user_compute_stream"] for p in seen] == ["77", "77"]
    assert runner.settings()["node_placement"] == runner._placement


@pytest.mark.parametrize("major,converts", [(10, True), (11, False), (None, False)])
def test_fp16_on_tensorrt_11_needs_an_fp16_graph(onnx_path, tmp_path, monkeypatch, major, converts):
    """TensorRT 11 has no weak typing: trt_fp16_enable on an fp32 graph would build an fp32 engine
    labelled fp16. Only a provider linking TensorRT 10 converts; otherwise the fp32 graph is refused."""
    monkeypatch.setattr(env, "ort_tensorrt_major", lambda: major)
    runner = OrtTensorrtRunner("cuda:0")
    runner.workload = Workload.from_file(onnx_path, 1, 16, precision="fp16", options={"trt_cache_dir": str(tmp_path)})
    runner._stream = None
    assert runner._providers()[0][1]["trt_fp16_enable"] == ("True" if converts else "False")
    if converts:
        assert runner._input_dtype("tensor(float)") == "float32"
    else:
        with pytest.raises(Unsupported, match="takes float32 but precision fp16"):
            runner._input_dtype("tensor(float)")
    assert runner._input_dtype("tensor(float16)") == "float16"  # an fp16 graph runs fp16 on either
