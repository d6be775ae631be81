import json
import subprocess
import sys

import pytest

from hwprofile import env
from hwprofile.runners import RUNNER_NAMES


def test_devices_lists_every_runner_with_reason(cli):
    code, out, err = cli("devices", "--json")
    data = json.loads(out)
    assert code == 0
    assert list(dict.fromkeys(r["runner"] for r in data["runners"])) == list(RUNNER_NAMES)
    by = {r["runner"]: r for r in data["runners"]}
    assert by["torch:cpu"]["available"] and by["torch:cpu"]["version"].startswith("torch ")
    assert by["ort:cpu"]["available"] and by["ort:cpu"]["reason"] is None
    for row in data["runners"]:
        assert row["available"] or row["reason"]  # an unavailable runner always says why
    cpu = data["devices"][0]
    assert cpu["device"] == "cpu" and cpu["id"].startswith("cpu-") and cpu["cpu"]["logical_cores"] >= 1
    assert data["libraries"]["torch"] and data["peaks"] == []


@pytest.mark.skipif(env.gpu_count() > 0, reason="checks the listing of a machine without a GPU")
def test_devices_table_without_gpu(cli):
    code, out, _ = cli("devices")
    assert code == 0 and "Runners" in out and "Devices" in out
    assert "ort:cuda" in out and "onnxruntime-gpu is not installed" in out or env.ort_has_provider_lib("cuda")


@pytest.mark.parametrize("fmt", ["markdown", "csv"])
def test_devices_formats(cli, fmt):
    code, out, _ = cli("devices", "--format", fmt)
    assert code == 0 and "torch:cpu" in out


def test_devices_warns_when_both_onnxruntime_packages_are_installed(cli, monkeypatch):
    monkeypatch.setattr(env, "ort_distributions", lambda: ["onnxruntime", "onnxruntime-gpu"])
    code, out, err = cli("devices", "--json")
    assert code == 0 and "both onnxruntime and onnxruntime-gpu are installed" in err
    assert json.loads(out)["warnings"][0].startswith("both onnxruntime")


def test_devices_peak(cli, monkeypatch):
    from hwprofile.measure import peaks as real

    monkeypatch.setattr("hwprofile.cli.devices.peaks", lambda d: real(d, seconds=0.05, matmul_n=256, copy_mb=8))
    code, out, _ = cli("devices", "--peak", "--json")
    peak = json.loads(out)["peaks"][0]
    assert code == 0 and peak["matmul_fp32"]["flops_per_s"] > 0 and peak["copy"]["gb_per_s"] > 0


def test_devices_runner_check(cli):
    code, out, err = cli("devices", "--runner", "torch:cpu,ort:cpu", "--json")
    assert code == 0 and {r["runner"] for r in json.loads(out)["runners"]} == {"torch:cpu", "ort:cpu"}


def test_unknown_runner_is_exit_2(cli):
    code, out, err = cli("devices", "--runner", "onnx:gpu")
    assert code == 2 and out == "" and "unknown runner 'onnx:gpu'; expected one of: torch:cpu" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(env.gpu_count() > 0, reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_exit_3_naming_what_is_available(cli):
    code, out, err = cli("devices", "--device", "cuda:0")
    assert code == 3 and out == ""
    assert err.strip() == "hwprofile: error: device cuda:0 is not available: no CUDA GPU is visible; " \
                          "available devices: cpu"


def test_unavailable_runner_is_exit_3_naming_what_is_available(cli, monkeypatch):
    monkeypatch.setattr(env, "has_module", lambda name: name != "tensorrt" and name != "tensorrt_libs")
    code, out, err = cli("devices", "--runner", "trt")
    assert code == 3 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "trt is unavailable: the tensorrt Python package is not installed; available here:" in err
    assert "torch:cpu" in err and "ort:cpu" in err


def test_malformed_device_is_exit_2(cli):
    code, _, err = cli("devices", "--device", "gpu0")
    assert code == 2 and "expected auto, cpu, cuda or cuda:N" in err


def test_devices_imports_no_heavy_library():
    code = ("import sys; from hwprofile.cli import main; rc = main(['devices', '--json']); "
            "bad = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'onnx') if m in sys.modules]; "
            "sys.stderr.write(str(bad)); sys.exit(rc or (1 if bad else 0))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
