"""ONNX export: the artifact record, metadata, batch modes, fp16, cache, files and external data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import exporters
from exporters import OnnxArtifact, to_onnx
from exporters.artifacts import cache_root, sha256_file
from hwprofile.errors import ConfigError, MeasurementError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_artifact_record(b0):
    assert b0.opset >= 18 and b0.input_name == "input" and b0.input_shape == ("batch", 3, 224, 224)
    assert b0.dtype == "float32" and b0.external_data is None and b0.dynamic_batch
    assert b0.sha256 == sha256_file(b0.path)
    assert set(b0.versions) == {"torch", "onnx", "onnxscript", "onnxruntime"} and all(b0.versions.values())
    assert b0.folded_bn_count == 49 and b0.folded_bn_channels == 42016 // 2  # every BatchNorm of EfficientNet-B0
    assert b0.folded_bn[0] == "stem.1"
    v = b0.verification
    assert v.passed and v.images == 3 and v.rel_err < v.tolerance["rel_err"] and v.cosine > 0.999999
    assert v.output_std > 0 and b0.export_s > 0
    assert OnnxArtifact.from_dict(json.loads(json.dumps(b0.to_dict()))) == b0


@pytest.mark.slow
def test_file_metadata_names_the_spec(b0):
    import hwprofile as hp
    from hwprofile.zoo import spec_from_dict

    model = onnx.load(b0.path)
    meta = {p.key: p.value for p in model.metadata_props}
    spec = json.loads(meta["hwprofile.spec"])
    expected = {"kind": "effnet", **dataclasses.asdict(hp.get_spec("EfficientNet-B0"))}
    assert spec == json.loads(json.dumps(expected)) == b0.spec
    assert spec_from_dict(spec) == hp.get_spec("EfficientNet-B0")  # the file says which model it is
    assert json.loads(meta["hwprofile.folded_bn"])["matched"] is True
    assert not [n for n in model.graph.node if n.op_type == "BatchNormalization"]  # all folded
    onnx.checker.check_model(model)


@pytest.mark.slow
def test_dynamic_batch_runs_any_batch(b0):
    sess = _session(b0.path)
    for n in (1, 5):
        out = sess.run(None, {"input": np.zeros((n, 3, 224, 224), np.float32)})[0]
        assert out.shape == (n, 1000)


@pytest.mark.slow
def test_fixed_batch(onnx_cache):
    art = to_onnx("RegNetZ-500MF", batch=2, verify=False, cache_dir=onnx_cache)
    assert art.input_shape == (2, 3, 224, 224) and not art.dynamic_batch and art.verification is None
    sess = _session(art.path)
    assert sess.run(None, {"input": np.zeros((2, 3, 224, 224), np.float32)})[0].shape == (2, 1000)
    with pytest.raises(Exception, match="index: 0 Got: 3 Expected: 2"):
        sess.run(None, {"input": np.zeros((3, 3, 224, 224), np.float32)})


@pytest.mark.slow
def test_fp16_graph(y200_fp16):
    assert y200_fp16.dtype == "float16" and y200_fp16.folded_bn_count == 44  # folded in fp32 before .half()
    sess = _session(y200_fp16.path)
    assert sess.get_inputs()[0].type == "tensor(float16)" and sess.get_outputs()[0].type == "tensor(float16)"
    out = sess.run(None, {"input": np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float16)})[0]
    assert np.isfinite(out).all() and out.std() > 0  # no overflow
    from exporters.verify import fp16_tolerance

    v = y200_fp16.verification
    assert v.passed and v.reference == "torch fp32" and v.tolerance == fp16_tolerance(v.noise_floor)
    assert 0 < v.noise_floor["rms_err"] < 0.05 and v.rms_err < 2 * v.noise_floor["rms_err"]


@pytest.mark.slow
def test_cache_hit_reuses_the_file(b0, onnx_cache, to_onnx_module, monkeypatch):
    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(to_onnx_module, "_run_exporter", no_export)
    again = to_onnx("efficientnet-b0", cache_dir=onnx_cache)
    assert again.cache_hit and again.path == b0.path and again.sha256 == b0.sha256
    assert again.verification == b0.verification


def test_cache_key_follows_settings_and_tampering(tiny_net, tmp_path, to_onnx_module, monkeypatch):
    a = to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path)
    b = to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path, batch=4)
    assert not a.cache_hit and not b.cache_hit and a.path != b.path
    with open(a.path, "ab") as f:  # the cached file no longer matches its record: export again
        f.write(b"\0")
    c = to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path)
    assert not c.cache_hit and c.sha256 == sha256_file(c.path) == a.sha256  # deterministic export
    tiny_net[0].weight.data.mul_(2)  # different weights: a different module
    d = to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path)
    assert d.cache_key != a.cache_key
    monkeypatch.setattr(to_onnx_module, "library_versions", lambda *names: {n: "0.0" for n in names})
    assert to_onnx_module._job(tiny_net, "dynamic", False, None, (3, 32, 32), None, 0).key() != d.cache_key


def test_module_export_counts_as_it_was_built(tiny_net, tmp_path):
    from hwprofile.graph import count_onnx

    art = to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path)
    assert art.spec is None and art.model == "Sequential" and art.verification.passed
    assert art.folded_bn == ("1",)
    cx = count_onnx(art.path)
    assert cx.params == sum(p.numel() for p in tiny_net.parameters())  # BN counted as 2C, biases as built
    assert cx.acts == 8 * 16 * 16 + 8 * 8 * 8 + 16 * 8 * 8 + 10  # conv, maxpool, conv, linear outputs
    assert tiny_net.training and tiny_net[1].running_var.eq(1).all()  # the caller's module is untouched


@pytest.mark.slow
def test_external_data_past_the_size_limit(tiny_net, tmp_path, to_onnx_module, monkeypatch):
    from hwprofile.graph import count_onnx

    monkeypatch.setattr(to_onnx_module, "EXTERNAL_DATA_BYTES", 1000)
    art = to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path / "cache")
    assert art.external_data and art.external_data.endswith(".onnx.data")
    assert sha256_file(art.external_data) == art.external_data_sha256 and art.verification.passed
    out = to_onnx(tiny_net, tmp_path / "m.onnx", input_shape=(3, 32, 32), cache_dir=tmp_path / "cache")
    assert out.cache_hit and out.external_data == str(tmp_path / "m.onnx.data")
    assert count_onnx(out.path).params == sum(p.numel() for p in tiny_net.parameters())
    assert _session(out.path).run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})[0].shape == (1, 10)


def test_publish_never_replaces_a_different_file(tiny_net, tmp_path):
    dest = tmp_path / "net.onnx"
    dest.write_bytes(b"precious")
    with pytest.raises(ConfigError, match="exists"):
        to_onnx(tiny_net, dest, input_shape=(3, 32, 32), cache_dir=tmp_path / "c")
    assert dest.read_bytes() == b"precious"
    art = to_onnx(tiny_net, dest, input_shape=(3, 32, 32), cache_dir=tmp_path / "c", overwrite=True)
    assert art.path == str(dest) and sha256_file(dest) == art.sha256
    assert to_onnx(tiny_net, dest, input_shape=(3, 32, 32), cache_dir=tmp_path / "c").path == str(dest)  # same file
    with pytest.raises(ConfigError, match=r"\.onnx"):
        to_onnx(tiny_net, tmp_path / "net.txt", input_shape=(3, 32, 32), cache_dir=tmp_path / "c")


def test_exporter_output_is_silenced(tiny_net, tmp_path, capfd):
    to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path, verify=False)
    out, err = capfd.readouterr()
    assert "[torch.onnx]" not in out and "torchvision" not in err


def test_verification_failure_raises(tiny_net, tmp_path, monkeypatch):
    import exporters.verify as verify

    monkeypatch.setitem(verify.TOLERANCES, "float32", {"rel_err": 0.0, "rms_err": 0.0, "cosine": 1.1})
    with pytest.raises(MeasurementError, match="does not reproduce PyTorch") as info:
        to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path)
    assert info.value.exit_code == 3 and not info.value.artifact.verification.passed
    assert not list(tmp_path.glob("*.json"))  # a failed export is not cached as good


@pytest.mark.parametrize("kw,needle", [
    ({"batch": "x"}, "batch must be"),
    ({"batch": 0}, "batch must be"),
    ({"opset": "17"}, "opset must be"),
    ({"input_shape": None}, "input_shape"),
    ({"input_shape": (3, 0, 32)}, "input_shape"),
])
def test_bad_arguments(tiny_net, tmp_path, kw, needle):
    kw = {"input_shape": (3, 32, 32), **kw}
    with pytest.raises(ConfigError, match=needle):
        to_onnx(tiny_net, cache_dir=tmp_path, **kw)


def test_an_older_opset_is_exported_as_asked(tiny_net, tmp_path):
    art = to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path, opset=17)
    assert art.opset == 17 and art.verification.passed


def test_an_opset_no_exporter_writes_is_refused(tiny_net, tmp_path):
    with pytest.raises(ConfigError, match="opset"):
        to_onnx(tiny_net, input_shape=(3, 32, 32), cache_dir=tmp_path, opset=6, verify=False)
    assert not list(tmp_path.glob("*.onnx"))


def test_not_a_model():
    with pytest.raises(ConfigError, match="expected a model spec"):
        to_onnx(42)


def test_cache_root_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HWPROFILE_CACHE", str(tmp_path / "hc"))
    assert cache_root("onnx", None) == tmp_path / "hc" / "onnx" and (tmp_path / "hc" / "onnx").is_dir()
    assert cache_root("onnx", tmp_path / "explicit") == tmp_path / "explicit"


def test_import_exporters_is_cheap():
    import subprocess
    import sys

    code = ("import sys, exporters; bad = [m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"to_onnx", "to_tensorrt", "OnnxArtifact", "EngineArtifact"} <= set(exporters.__all__)
