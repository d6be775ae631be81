import subprocess
import sys

import pytest

from hwprofile import env
from hwprofile.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from hwprofile.runners import (
    RUNNER_NAMES,
    availability,
    available_runners,
    check_runner_name,
    get_runner,
    resolve_device,
    runner_class,
    runner_names,
)
from hwprofile.runners._fake import PATH as FAKE
from hwprofile.runners._registry import register_runner, unregister_runner


def test_names_and_classes():
    assert runner_names() == RUNNER_NAMES == ("torch:cpu", "torch:cuda", "ort:cpu", "ort:cuda", "ort:tensorrt", "trt")
    for name in RUNNER_NAMES:
        cls = runner_class(name)
        assert cls.name == name and cls.device_type == ("cpu" if name.endswith(":cpu") else "cuda")
        assert cls.timing_method in ("perf_counter_ns", "cuda_event")


def test_unknown_runner_is_config_error_listing_names():
    with pytest.raises(ConfigError, match="expected one of: torch:cpu, torch:cuda, ort:cpu"):
        check_runner_name("onnx:cpu")
    assert check_runner_name(" ORT:CPU ") == "ort:cpu"


def test_cpu_runners_available_here_gpu_ones_say_why():
    assert availability("torch:cpu") == (True, f"torch:cpu - torch {env.torch_build()['version']}")
    assert availability("ort:cpu")[0]
    assert set(available_runners("cpu")) >= {"torch:cpu", "ort:cpu"}
    ok, why = availability("torch:cpu", "cuda:0")
    assert not ok and "runs on cpu devices" in why


@pytest.mark.skipif(env.gpu_count() > 0, reason="checks the messages of a machine without a GPU")
def test_gpu_runner_reasons_without_gpu():
    if env.torch_cuda_problem():
        assert "CPU-only build" in availability("torch:cuda", "cuda:0")[1] or "not installed" in \
            availability("torch:cuda", "cuda:0")[1]
    if not env.ort_has_provider_lib("cuda"):
        assert availability("ort:cuda", "cuda:0") == (False, "ort:cuda - onnxruntime-gpu is not installed")
    assert available_runners("cuda:0") == []


def test_gpu_reason_order(monkeypatch):
    """Software first, then the GPU: with the CUDA provider present, only the missing GPU is left."""
    monkeypatch.setattr(env, "ort_has_provider_lib", lambda short: True)
    monkeypatch.setattr(env, "gpu_count", lambda: 0)
    assert availability("ort:cuda", "cuda:0") == (False, "ort:cuda - no CUDA GPU is visible")
    monkeypatch.setattr(env, "gpu_count", lambda: 1)
    assert availability("ort:cuda", "cuda:0")[0]
    assert availability("ort:cuda", "cuda:1") == (False, "ort:cuda - cuda:1 does not exist (1 GPU(s) visible)")


def test_get_runner_unavailable_names_what_is_available(monkeypatch):
    monkeypatch.setattr(env, "ort_has_provider_lib", lambda short: False)
    assert get_runner("ort:cpu").name == "ort:cpu"
    with pytest.raises(RunnerUnavailable) as info:
        get_runner("ort:cuda")
    msg = str(info.value)
    assert info.value.exit_code == 3 and "\n" not in msg
    assert "ort:cuda is unavailable: onnxruntime-gpu is not installed" in msg and "torch:cpu, ort:cpu" in msg


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(env, "gpu_count", lambda: 0)
    assert resolve_device("auto") == "cpu" and resolve_device(" CPU ") == "cpu"
    with pytest.raises(DeviceUnavailable, match="no CUDA GPU is visible; available devices: cpu") as info:
        resolve_device("cuda:0")
    assert info.value.exit_code == 3
    for bad in ("gpu", "cuda:x", "cuda:-1", ""):
        with pytest.raises(ConfigError, match="expected auto, cpu, cuda or cuda:N"):
            resolve_device(bad)
    monkeypatch.setattr(env, "gpu_count", lambda: 2)
    assert resolve_device("auto") == "cuda:0" and resolve_device("cuda") == "cuda:0"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(DeviceUnavailable, match="2 CUDA GPU"):
        resolve_device("cuda:2")


def test_cuda_visible_devices_limits_the_count(monkeypatch):
    monkeypatch.setattr(env, "_physical_gpus", lambda: ("A", "B"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert env.gpu_names() == ["B"]  # cuda:0 is the second physical GPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert env.gpu_count() == 0
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert env.gpu_count() == 2


def test_registered_runner_is_not_listed():
    register_runner("fake", FAKE)
    try:
        assert check_runner_name("fake") == "fake" and "fake" not in runner_names()
        with pytest.raises(ConfigError):
            register_runner("ort:cpu", FAKE)
    finally:
        unregister_runner("fake")
    with pytest.raises(ConfigError):
        check_runner_name("fake")


def test_registry_and_runner_modules_import_no_heavy_library():
    code = ("import sys, hwprofile.runners as r, hwprofile.measure._fingerprint, hwprofile.runners._torch, "
            "hwprofile.runners._ort, hwprofile.runners._ort_gpu, hwprofile.runners._trt; "
            "[r.availability(n, d) for n in r.RUNNER_NAMES for d in ('cpu', 'cuda:0')]; "
            "hwprofile.measure._fingerprint.fingerprint('cpu'); "
            "bad = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cuda_index_maps_to_the_physical_gpu_nvml_counts(monkeypatch):
    """NVML ignores CUDA_VISIBLE_DEVICES: cuda:N must be looked up through it (by index or UUID)."""
    class Nvml:
        def nvmlDeviceGetHandleByIndex(self, i):
            return ("index", i)

        def nvmlDeviceGetHandleByUUID(self, uuid):
            return ("uuid", uuid)

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert env.nvml_handle(Nvml(), 1) == ("index", 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert env.nvml_handle(Nvml(), 0) == ("index", 2) and env.nvml_handle(Nvml(), 1) == ("index", 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a1b,MIG-77")
    assert env.nvml_handle(Nvml(), 0) == ("uuid", "GPU-8a1b") and env.nvml_handle(Nvml(), 1) == ("uuid", "MIG-77")


def test_ort_tensorrt_says_which_libnvinfer_its_provider_needs(monkeypatch, tmp_path):
    """onnxruntime-gpu's TensorRT provider links one TensorRT major (libnvinfer.so.10 today)."""
    from hwprofile.runners._ort_gpu import OrtTensorrtRunner

    capi = tmp_path / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    (capi / "libonnxruntime_providers_tensorrt.so").write_bytes(b"\x7fELF...libnvinfer.so.10\x00libcudart.so.12\x00")
    (capi / "libonnxruntime_providers_cuda.so").write_bytes(b"\x7fELF")
    monkeypatch.setattr(env, "module_dir", lambda name: tmp_path / name if name == "onnxruntime" else None)
    monkeypatch.setattr(env, "has_module", lambda name: name in ("onnxruntime", "tensorrt"))
    monkeypatch.setattr(env, "has_tensorrt_libs", lambda: True)
    monkeypatch.setattr(env, "tensorrt_version", lambda: "11.4.0")
    monkeypatch.setattr(env, "gpu_problem", lambda index: None)
    assert env.ort_tensorrt_needs() == "libnvinfer.so.10"
    monkeypatch.setattr(env, "library_findable", lambda soname: False)
    why = OrtTensorrtRunner.missing(0)
    assert why == ("this onnxruntime's TensorRT provider links libnvinfer.so.10, which the loader cannot find "
                   "(TensorRT 11.4.0 is installed)")
    monkeypatch.setattr(env, "library_findable", lambda soname: soname == "libnvinfer.so.10")
    assert OrtTensorrtRunner.missing(0) is None


def test_library_findable_looks_in_ld_library_path(monkeypatch, tmp_path):
    (tmp_path / "libnvinfer.so.10").write_bytes(b"")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    assert env.library_findable("libnvinfer.so.10")
    assert not env.library_findable("libnvinfer.so.99")
