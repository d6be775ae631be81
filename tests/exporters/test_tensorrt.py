"""The TensorRT engine builder, run against a strict stand-in of the TensorRT 10/11 API.

TensorRT cannot be installed on the development and CI machines, so these tests check the
builder's logic and that it only touches names present in both TensorRT 10.16 and 11.4;
the ``trt`` test at the end needs the real library and a GPU.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from exporters import EngineArtifact, to_tensorrt  # noqa: E402
from hwprofile.errors import ConfigError, RunnerUnavailable  # noqa: E402


def _graph(tmp_path, batch="batch", dtype=TensorProto.FLOAT, name="g.onnx", hw=(16, 16)) -> str:
    np_dtype = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np_dtype), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["out"], pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("input", dtype, [batch, 3, *hw])],
                              [helper.make_tensor_value_info("out", dtype, None)], [w])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def _calls(fake, name):
    return [c for c in fake._calls if c[0] == name]


def test_profiles_workspace_and_engine_record(fake_trt, tmp_path):
    eng = to_tensorrt(_graph(tmp_path), batch_sizes=[8, 1, 32], workspace_mb=512, cache_dir=tmp_path / "trt")
    shapes = [c[2:] for c in _calls(fake_trt, "set_shape")]
    assert shapes == [((b, 3, 16, 16),) * 3 for b in (1, 8, 32)]  # one exact profile per batch size
    assert all(c[1] == "input" for c in _calls(fake_trt, "set_shape"))
    assert len(_calls(fake_trt, "add_optimization_profile")) == 3
    assert _calls(fake_trt, "set_memory_pool_limit") == [("set_memory_pool_limit", fake_trt.MemoryPoolType.WORKSPACE,
                                                          512 << 20)]
    assert _calls(fake_trt, "create_network") == [("create_network", 0)]  # fp32: weakly typed, no flags
    assert not _calls(fake_trt, "set_flag")
    assert isinstance(eng, EngineArtifact) and eng.tensorrt_version == "11.4.0.106" and eng.precision == "fp32"
    assert eng.gpu_name == "Fake GPU 80GB" and eng.device_memory_bytes == 123 << 20
    assert eng.profile_for(8) == 1 and eng.profile_for(32) == 2
    with pytest.raises(ConfigError, match="outside this engine's profiles"):
        eng.profile_for(16)
    assert open(eng.path, "rb").read().startswith(b"ENGINE:3\n")
    assert EngineArtifact.from_dict(eng.to_dict()) == eng


def test_range_profile(fake_trt, tmp_path):
    eng = to_tensorrt(_graph(tmp_path), batch_sizes=[1, 4, 16], profiles="range", cache_dir=tmp_path)
    assert [c[2:] for c in _calls(fake_trt, "set_shape")] == [((1, 3, 16, 16), (16, 3, 16, 16), (16, 3, 16, 16))]
    assert eng.profile_for(7) == 0


def test_timing_cache_is_written_and_reused(fake_trt, tmp_path):
    tc = tmp_path / "timing.cache"
    to_tensorrt(_graph(tmp_path), batch_sizes=[1], cache_dir=tmp_path, timing_cache=tc)
    first = tc.read_bytes()
    assert first.startswith(b"TC1") and _calls(fake_trt, "create_timing_cache")[0][1] == b""
    to_tensorrt(_graph(tmp_path), batch_sizes=[2], cache_dir=tmp_path, timing_cache=tc)
    assert _calls(fake_trt, "create_timing_cache")[1][1] == first  # the second build starts from the first's
    assert tc.read_bytes() != first
    assert ("set_timing_cache", False) in fake_trt._calls


def test_second_build_is_a_cache_hit(fake_trt, tmp_path):
    path = _graph(tmp_path)
    a = to_tensorrt(path, batch_sizes=[1, 8], cache_dir=tmp_path)
    b = to_tensorrt(path, batch_sizes=[8, 1], cache_dir=tmp_path)
    assert len(_calls(fake_trt, "build_serialized_network")) == 1
    assert not a.cache_hit and b.cache_hit and b.path == a.path and b.sha256 == a.sha256
    c = to_tensorrt(path, batch_sizes=[1, 8], precision="fp32", workspace_mb=2048, cache_dir=tmp_path)
    assert not c.cache_hit and c.path != a.path


def test_detailed_profiling_verbosity_has_its_own_cache_key(fake_trt, tmp_path):
    """Per-layer times need engines built with ProfilingVerbosity.DETAILED (the inspector then names each layer's
    ONNX nodes): built under a key of their own, so a plain engine is never reused for them nor replaced."""
    path = _graph(tmp_path)
    plain = to_tensorrt(path, batch_sizes=[1], cache_dir=tmp_path)
    assert not _calls(fake_trt, "profiling_verbosity") and plain.profiling_verbosity == "layer_names_only"
    detailed = to_tensorrt(path, batch_sizes=[1], cache_dir=tmp_path, profiling_verbosity="detailed")
    assert _calls(fake_trt, "profiling_verbosity") == [("profiling_verbosity", fake_trt.ProfilingVerbosity.DETAILED)]
    assert not detailed.cache_hit and detailed.cache_key != plain.cache_key and detailed.path != plain.path
    assert detailed.profiling_verbosity == "detailed" and EngineArtifact.from_dict(detailed.to_dict()) == detailed
    again = to_tensorrt(path, batch_sizes=[1], cache_dir=tmp_path, profiling_verbosity="detailed")
    assert again.cache_hit and again.path == detailed.path
    assert to_tensorrt(path, batch_sizes=[1], cache_dir=tmp_path).path == plain.path  # the plain one is kept
    with pytest.raises(ConfigError, match="profiling_verbosity"):
        to_tensorrt(path, cache_dir=tmp_path, profiling_verbosity="verbose")


def test_tampered_engine_is_rebuilt(fake_trt, tmp_path):
    path = _graph(tmp_path)
    a = to_tensorrt(path, cache_dir=tmp_path)
    with open(a.path, "ab") as f:
        f.write(b"garbage")
    b = to_tensorrt(path, cache_dir=tmp_path)
    assert not b.cache_hit and len(_calls(fake_trt, "build_serialized_network")) == 2


def test_fp16_on_strongly_typed_tensorrt_needs_an_fp16_graph(install_trt, tmp_path):
    for which in ("common", "11.4.0.106"):
        install_trt(which)
        with pytest.raises(ConfigError, match="fp16 ONNX graph"):
            to_tensorrt(_graph(tmp_path), precision="fp16", cache_dir=tmp_path)


def test_fp16_graph_builds_strongly_typed(fake_trt, tmp_path):
    path = _graph(tmp_path, dtype=TensorProto.FLOAT16, name="h.onnx")
    eng = to_tensorrt(path, precision="fp16", batch_sizes=[4], cache_dir=tmp_path)
    strongly = 1 << int(fake_trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert _calls(fake_trt, "create_network") == [("create_network", strongly)]
    assert not _calls(fake_trt, "set_flag") and eng.strongly_typed and eng.precision == "fp16"
    with pytest.raises(ConfigError, match="fp32 engine needs an fp32 export"):
        to_tensorrt(path, precision="fp32", cache_dir=tmp_path)


def test_fp16_flag_only_where_tensorrt_has_it(install_trt, tmp_path):
    fake = install_trt("10.16.1.11")
    eng = to_tensorrt(_graph(tmp_path), precision="fp16", cache_dir=tmp_path)
    assert _calls(fake, "set_flag") == [("set_flag", fake.BuilderFlag.FP16)]
    assert _calls(fake, "create_network") == [("create_network", 0)] and not eng.strongly_typed
    assert eng.tensorrt_version == "10.16.1.11"


def test_parser_failure_is_reported(fake_trt, tmp_path):
    fake_trt._state.update(parse_ok=False, errors=["In node 3 (Foo): No importer registered for op: Foo"])
    with pytest.raises(RunnerUnavailable, match="cannot parse .*No importer registered for op: Foo") as info:
        to_tensorrt(_graph(tmp_path), cache_dir=tmp_path)
    assert info.value.exit_code == 3 and not _calls(fake_trt, "build_serialized_network")


def test_build_failure_is_reported(fake_trt, tmp_path):
    fake_trt._state["build_ok"] = False
    with pytest.raises(RunnerUnavailable, match="could not build an engine"):
        to_tensorrt(_graph(tmp_path), cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.engine"))


def test_fixed_batch_graph(fake_trt, tmp_path):
    path = _graph(tmp_path, batch=4, name="fixed.onnx")
    eng = to_tensorrt(path, batch_sizes=[4], cache_dir=tmp_path)
    assert not _calls(fake_trt, "set_shape") and eng.profile_for(4) == 0  # static input: no profile needed
    with pytest.raises(ConfigError, match="fixed batch of 4"):
        to_tensorrt(path, batch_sizes=[1, 4], cache_dir=tmp_path)


@pytest.mark.parametrize("batch", ["batch", 4])
def test_symbolic_resolution_is_a_clear_error(fake_trt, tmp_path, batch):
    path = _graph(tmp_path, batch=batch, hw=("h", "w"), name="hw.onnx")
    with pytest.raises(ConfigError, match="symbolic non-batch dimensions"):
        to_tensorrt(path, batch_sizes=[4], cache_dir=tmp_path)
    assert not _calls(fake_trt, "build_serialized_network")


@pytest.mark.parametrize("kw,needle", [
    ({"precision": "int8"}, "precision must be"),
    ({"batch_sizes": []}, "positive integers"),
    ({"batch_sizes": [0, 2]}, "positive integers"),
    ({"workspace_mb": 0}, "workspace_mb"),
    ({"profiles": "every"}, "profiles must be"),
])
def test_bad_arguments(fake_trt, tmp_path, kw, needle):
    with pytest.raises(ConfigError, match=needle):
        to_tensorrt(_graph(tmp_path), cache_dir=tmp_path, **kw)
    assert not fake_trt._calls


def test_without_tensorrt_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import tensorrt -> ImportError
    with pytest.raises(RunnerUnavailable, match="pip install tensorrt-cu13") as info:
        to_tensorrt(_graph(tmp_path), cache_dir=tmp_path)
    assert info.value.exit_code == 3


# ------------------------------------- the stand-in itself ------------------------------------- #

def test_stand_in_refuses_names_removed_in_tensorrt_11(fake_trt):
    for owner, name in ((fake_trt.BuilderFlag, "FP16"), (fake_trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"),
                        (fake_trt, "IInt8EntropyCalibrator2"), (fake_trt.BuilderFlag, "INT8")):
        with pytest.raises(AttributeError, match="not in the TensorRT API list"):
            getattr(owner, name)
    builder = fake_trt.Builder(fake_trt.Logger(fake_trt.Logger.WARNING))
    with pytest.raises(AttributeError):
        builder.platform_has_fast_fp16  # noqa: B018 - removed in 11.0
    with pytest.raises(AttributeError):
        builder.create_netwrk(0)  # a misspelling
    with pytest.raises(AttributeError):
        builder.max_workspace_size = 1 << 30  # removed in 10.0, refused on write too
    engine = fake_trt.Runtime(None).deserialize_cuda_engine(b"ENGINE:1")
    assert engine.device_memory_size_v2 == 123 << 20
    with pytest.raises(AttributeError):
        engine.device_memory_size  # noqa: B018 - v1 removed in 11.0


def test_stand_in_follows_each_version_list(install_trt):
    ten = install_trt("10.16.1.11")
    assert hasattr(ten.BuilderFlag, "FP16") and hasattr(ten.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    eleven = install_trt("11.4.0.106")
    assert not hasattr(eleven.BuilderFlag, "FP16") and hasattr(eleven.NetworkDefinitionCreationFlag,
                                                                "STRONGLY_TYPED")


def test_folded_names_are_suffixes_of_listed_strings():
    import fake_tensorrt

    names = fake_tensorrt.allowed_names("common")
    for name, longer in fake_tensorrt.FOLDED.items():
        assert name in names and longer.endswith(name)
    assert "FP16" not in names and "EXPLICIT_BATCH" not in names


# ----------------------------------------- real TensorRT ----------------------------------------- #

@pytest.mark.trt
@pytest.mark.gpu
def test_real_tensorrt_builds_an_engine(b0, tmp_path):
    eng = to_tensorrt(b0, batch_sizes=[1, 8], cache_dir=tmp_path)
    assert eng.device_memory_bytes and eng.device_memory_bytes > 0 and eng.profile_for(8) == 1
    assert to_tensorrt(b0, batch_sizes=[1, 8], cache_dir=tmp_path).cache_hit


@pytest.mark.parametrize("which,strongly", [("10.16.1.11", False), ("11.4.0.106", True)])
def test_strongly_typed_is_recorded_truthfully(install_trt, tmp_path, which, strongly):
    """TensorRT 11 has no weak typing: every network it builds is strongly typed, fp32 graphs too."""
    install_trt(which)
    eng = to_tensorrt(_graph(tmp_path), precision="fp32", cache_dir=tmp_path)
    assert eng.strongly_typed is strongly and eng.precision == "fp32"
