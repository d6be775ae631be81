"""In-process lifecycle of the torch:cpu runner (the isolated path is in tests/measure)."""

import pytest

torch = pytest.importorskip("torch")

from hwprofile.profile import Workload  # noqa: E402
from hwprofile.runners._torch import TorchCpuRunner, TorchCudaRunner  # noqa: E402
from hwprofile.zoo import get_spec  # noqa: E402


def _workload(options=None, **kw):
    return Workload.from_spec(get_spec("RegNetX-200MF"), batch=2, resolution=32,
                              options={"threads": 1, **(options or {})}, **kw)


def test_infer_lifecycle():
    with TorchCpuRunner() as runner:
        runner.load(_workload())
        assert not runner.model.training
        ms = [runner.time_once() for _ in range(3)]
        settings = runner.settings()
    assert all(m > 0 for m in ms)
    assert settings["threads"] == 1 and settings["library"] == "torch" and not settings["channels_last"]
    assert not hasattr(runner, "model")  # close released it


def test_train_runs_backward_and_restores_batchnorm():
    runner = TorchCpuRunner()
    runner.load(_workload(mode="train"))
    model = runner.model
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    runner.infer()
    runner.infer()
    assert model.training and bn.num_batches_tracked.item() == before[1].item() + 2
    assert not torch.equal(bn.running_mean, before[0])
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    runner.close()
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.num_batches_tracked, before[1])


def test_channels_last_option():
    with TorchCpuRunner() as runner:
        runner.load(Workload.from_spec(get_spec("RegNetX-200MF"), batch=1, resolution=32,
                                       options={"threads": 1, "channels_last": True}))
        assert runner._x.is_contiguous(memory_format=torch.channels_last)
        runner.infer()
        assert runner.settings()["channels_last"]


def test_checks():
    onnx_workload = Workload.from_file("m.onnx", batch=1, resolution=32)
    assert "runs spec workloads" in TorchCpuRunner.unsupported_reason(onnx_workload)
    graphs = _workload(options={"cuda_graphs": True})
    assert "torch:cuda infer only" in TorchCpuRunner.unsupported_reason(graphs)
    assert TorchCudaRunner.unsupported_reason(graphs) is None
    assert "torch:cuda infer only" in TorchCudaRunner.unsupported_reason(
        Workload.from_spec(get_spec("RegNetX-200MF"), 1, 32, mode="train", options={"cuda_graphs": True}))


@pytest.fixture
def new_tf32_api():
    """torch >= 2.9's fp32_precision API in use: reading or setting the legacy allow_tf32 flag then raises."""
    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("this torch has no fp32_precision settings")
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    yield
    matmul.fp32_precision = before


def test_cuda_settings_read_tf32_without_failing(new_tf32_api, monkeypatch):
    from hwprofile.runners import tf32_settings
    from hwprofile.runners._torch import TorchCudaRunner

    assert tf32_settings(torch)["matmul_fp32_precision"] == "tf32"
    assert tf32_settings(torch)["matmul_allow_tf32"] is True  # derived: torch refuses the legacy read
    runner = TorchCudaRunner("cuda:0")
    runner.workload = Workload.from_spec(get_spec("RegNetX-200MF"), batch=1, resolution=32)
    runner._half, runner._dev = False, torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    settings = runner.settings()
    assert settings["gpu"] == "Fake GPU" and settings["matmul_allow_tf32"] is True
    assert settings["matmul_fp32_precision"] == "tf32" and isinstance(settings["cudnn_allow_tf32"], bool)


def test_tf32_peak_uses_the_new_api_and_restores_it(new_tf32_api):
    import importlib
    import time

    peaks_module = importlib.import_module("hwprofile.measure._peaks")  # the package attribute is the function

    result = peaks_module._tf32_matmul(torch, torch.device("cpu"), 32, 0.01, time.perf_counter)
    assert result["flops_per_s"] > 0 and torch.backends.cuda.matmul.fp32_precision == "tf32"
