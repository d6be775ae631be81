import json
import sys
import types

import pytest

from hwprofile.measure import device_id, fingerprint, peaks
from hwprofile.measure._fingerprint import gpu_info


def test_cpu_fingerprint():
    fp = fingerprint("cpu")
    json.dumps(fp)
    assert fp["kind"] == "cpu" and fp["device"] == "cpu" and fp["id"] == device_id(fp)
    assert fp["cpu"]["model"] and fp["cpu"]["logical_cores"] >= 1 and fp["ram_gb"] > 0
    assert fp["os"]["system"] and fp["python"].count(".") == 2
    libs = fp["libraries"]
    assert {"torch", "onnx", "onnxruntime", "tensorrt", "hwprofile", "numpy"} <= set(libs)
    assert fingerprint("auto")["id"] == fp["id"] or fingerprint("auto")["kind"] == "gpu"


@pytest.mark.parametrize("fp,expected", [
    ({"kind": "cpu", "cpu": {"model": "Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz", "logical_cores": 2}},
     "cpu-intel-xeon-platinum-8488c-2c"),
    ({"kind": "cpu", "cpu": {"model": "AMD EPYC 7R13 48-Core Processor", "logical_cores": 16}},
     "cpu-amd-epyc-7r13-16c"),
    ({"kind": "cpu", "cpu": {"model": "AMD EPYC", "logical_cores": 2}}, "cpu-amd-epyc-2c"),
    ({"kind": "gpu", "gpu": {"name": "NVIDIA H100 80GB HBM3"}}, "gpu-nvidia-h100-80gb-hbm3"),
    ({"kind": "gpu", "gpu": {"name": None}}, "gpu-unknown"),
])
def test_device_id(fp, expected):
    assert device_id(fp) == expected


class _FakeNvml(types.ModuleType):
    """Just enough pynvml for gpu_info; one call is 'not supported', as on many boards."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2

    def __init__(self):
        super().__init__("pynvml")
        self.calls = []

    def __getattr__(self, name):
        values = {"nvmlDeviceGetName": "NVIDIA H100 80GB HBM3", "nvmlDeviceGetUUID": "GPU-1234",
                  "nvmlSystemGetDriverVersion": b"560.35.03", "nvmlSystemGetCudaDriverVersion": 12060,
                  "nvmlDeviceGetMemoryInfo": types.SimpleNamespace(total=85520809984, used=1 << 20),
                  "nvmlDeviceGetPowerManagementLimit": 700000, "nvmlDeviceGetCudaComputeCapability": (9, 0),
                  "nvmlDeviceGetClockInfo": 1980, "nvmlDeviceGetMaxClockInfo": 1980, "nvmlDeviceGetEccMode": (1, 1),
                  "nvmlDeviceGetPersistenceMode": 1, "nvmlDeviceGetCount": 1,
                  "nvmlDeviceGetPciInfo": types.SimpleNamespace(busId="00000000:18:00.0")}
        if name in ("nvmlInit", "nvmlShutdown", "nvmlDeviceGetHandleByIndex"):
            return lambda *a: None
        if name not in values:
            def unsupported(*a):
                raise RuntimeError("NVMLError_NotSupported")
            return unsupported
        return lambda *a: values[name]


def test_gpu_info_from_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    info = gpu_info(0)
    assert info["nvml"] == "ok" and info["name"] == "NVIDIA H100 80GB HBM3" and info["uuid"] == "GPU-1234"
    assert info["driver"] == "560.35.03" and info["cuda_driver"] == "12.6" and info["compute_capability"] == "9.0"
    assert info["power_limit_w"] == 700 and info["ecc_enabled"] is True and info["memory_total_mb"] == 81559
    assert info["sm_clock_max_mhz"] == 1980 and info["pci_bus_id"] == "00000000:18:00.0"
    assert device_id({"kind": "gpu", "gpu": info}) == "gpu-nvidia-h100-80gb-hbm3"


def test_gpu_info_without_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert gpu_info(0)["nvml"].startswith("unavailable")


def test_peaks_cpu_small():
    pytest.importorskip("torch")
    p = peaks("cpu", seconds=0.05, matmul_n=256, copy_mb=8)
    mm, cp = p["matmul_fp32"], p["copy"]
    assert mm["flops_per_s"] > 1e6 and mm["flops_per_s_best"] >= mm["flops_per_s"] and mm["n"] == 256
    assert cp["gb_per_s"] > 0 and cp["size_mb"] == 8 and p["threads"] >= 1 and "matmul_fp16" not in p
