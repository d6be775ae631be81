"""CUDA version checks of the environment probes: the driver against the libraries' CUDA builds."""

import json
import sys

import pytest

from hwprofile import env
from hwprofile.runners import availability


@pytest.fixture
def gpu_box(monkeypatch):
    """One visible GPU, torch and onnxruntime-gpu built for CUDA 13.0, a driver supporting CUDA 13.0."""
    monkeypatch.setattr(env, "gpu_names", lambda: ["Fake GPU"])
    monkeypatch.setattr(env, "torch_build", lambda: {"version": "2.13.0+cu130", "cuda": "13.0"})
    monkeypatch.setattr(env, "has_module", lambda name: name in ("torch", "onnxruntime"))
    monkeypatch.setattr(env, "ort_has_provider_lib", lambda short: short == "cuda")
    monkeypatch.setattr(env, "ort_version", lambda: "1.31.0")
    monkeypatch.setattr(env, "ort_cuda_version", lambda: "13.0")
    monkeypatch.setattr(env, "nvml_cuda_driver_version", lambda: (13, 0))
    return monkeypatch


def test_matching_builds_are_available(gpu_box):
    assert availability("torch:cuda", "cuda:0")[0] and availability("ort:cuda", "cuda:0")[0]


def test_a_driver_older_than_the_cuda_build_is_a_one_line_reason(gpu_box):
    gpu_box.setattr(env, "nvml_cuda_driver_version", lambda: (12, 4))
    ok, why = availability("torch:cuda", "cuda:0")
    assert not ok and why == ("torch:cuda - torch 2.13.0+cu130 is built for CUDA 13.0, but the NVIDIA driver supports "
                              "CUDA up to 12.4: update the driver, or install a CUDA 12 build")
    ok, why = availability("ort:cuda", "cuda:0")
    assert not ok and "onnxruntime-gpu 1.31.0 is built for CUDA 13.0" in why and "\n" not in why


def test_torch_and_onnxruntime_on_different_cuda_majors(gpu_box):
    gpu_box.setattr(env, "torch_build", lambda: {"version": "2.13.0+cu128", "cuda": "12.8"})
    gpu_box.setattr(env, "nvml_cuda_driver_version", lambda: (13, 0))
    assert availability("torch:cuda", "cuda:0")[0]
    ok, why = availability("ort:cuda", "cuda:0")
    assert not ok and "torch 2.13.0+cu128 is built for CUDA 12.8 and onnxruntime-gpu 1.31.0 for CUDA 13.0" in why


def test_unknown_versions_are_not_a_problem(gpu_box):
    gpu_box.setattr(env, "nvml_cuda_driver_version", lambda: None)
    gpu_box.setattr(env, "ort_cuda_version", lambda: None)
    assert env.cuda_driver_problem("torch", "13.0") is None and env.torch_ort_cuda_problem() is None


def test_ort_cuda_version_is_read_from_the_build_info(tmp_path, monkeypatch):
    (tmp_path / "capi").mkdir()
    (tmp_path / "capi" / "build_and_package_info.py").write_text(
        "package_name = 'onnxruntime-gpu'\n__version__ = '1.31.0'\ncuda_version = '13.0'\ncudnn_version = '9.14'\n")
    monkeypatch.setattr(env, "module_dir", lambda name: tmp_path)
    assert env.ort_cuda_version() == "13.0"
    (tmp_path / "capi" / "build_and_package_info.py").write_text("package_name = 'onnxruntime'\n")
    assert env.ort_cuda_version() is None


def test_devices_and_run_say_it_in_one_line(gpu_box, cli, tmp_path):
    gpu_box.setattr(env, "nvml_cuda_driver_version", lambda: (12, 4))
    code, out, err = cli("devices", "--json")
    row = next(r for r in json.loads(out)["runners"] if r["runner"] == "torch:cuda")
    assert code == 0 and not row["available"] and "NVIDIA driver supports CUDA up to 12.4" in row["reason"]
    code, out, err = cli("run", "--device", "cuda:0", "--runners", "torch:cuda", "--out", str(tmp_path / "p.json"),
                         "--quiet")
    assert code == 3 and len(err.strip().splitlines()) == 1 and "NVIDIA driver supports CUDA up to 12.4" in err
    assert not (tmp_path / "p.json").exists()  # refused before measuring: no sweep of failed records


def _fake_ort(site, dist: str, version: str) -> None:
    """A distribution ``dist`` that installs the ``onnxruntime`` package into ``site`` (metadata and files)."""
    pkg = site / "onnxruntime"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(f"__version__ = {version!r}\n")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text("onnxruntime/__init__.py,,\n")


def test_onnxruntime_gpu_ahead_on_the_path_is_the_one_used_and_no_clash(tmp_path, monkeypatch):
    """The GPU image ships the CPU build; onnxruntime-gpu carried to a --target folder ahead on the path
    is the one ``import onnxruntime`` loads, and the two do not overwrite each other."""
    ahead, image = tmp_path / "carried", tmp_path / "image"
    _fake_ort(ahead, "onnxruntime-gpu", "1.31.1")
    _fake_ort(image, "onnxruntime", "1.30.0")
    monkeypatch.syspath_prepend(str(image))
    monkeypatch.syspath_prepend(str(ahead))
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    assert set(env.ort_distributions()) == {"onnxruntime", "onnxruntime-gpu"}
    assert not env.ort_distributions_clash()
    assert env.ort_active_distribution() == "onnxruntime-gpu" and env.ort_version() == "1.31.1"


def test_both_onnxruntime_builds_in_one_folder_clash(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_ort(site, "onnxruntime-gpu", "1.31.1")
    _fake_ort(site, "onnxruntime", "1.30.0")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    assert env.ort_distributions_clash() and env.ort_active_distribution() is None
