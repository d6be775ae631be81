"""The trt runner's TensorRT logic against a strict stand-in, on CPU.

The stand-in refuses any TensorRT name that is not in both the 10.16 and 11.4 bindings
(tests/data/tensorrt/identifiers-common.txt). A name may also be the tail of a listed string at a
CamelCase or ``_`` boundary ("Logger" in "ILogger"): the lists come from ``strings``, where the linker
folds a short literal into a longer one ending with it. The CUDA parts (stream, events, device
tensors) are replaced by CPU ones; the end-to-end GPU test is in test_gpu.py.
"""

import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fake_trt_env import CpuEvent  # noqa: E402
from hwprofile.profile import Workload  # noqa: E402
from hwprofile.runners import Unsupported  # noqa: E402
from hwprofile.runners._trt import TrtRunner  # noqa: E402

COMMON = set((Path(__file__).parents[1] / "data" / "tensorrt" / "identifiers-common.txt").read_text().split())
ENGINE_BYTES = b"FAKE-ENGINE"


def allowed(name: str) -> bool:
    if name in COMMON:
        return True
    return len(name) >= 4 and any(s.endswith(name) and len(s) > len(name) and
                                  (name[0].isupper() or s[-len(name) - 1] == "_") for s in COMMON)


class Strict:
    """Attribute access is checked against the identifier list."""

    def __getattribute__(self, name):
        if not name.startswith("_") and not allowed(name):
            raise AttributeError(f"TensorRT 10.x/11.x common API has no {name!r}")
        return object.__getattribute__(self, name)


class Enum(Strict):
    def __init__(self, **members):
        for k, v in members.items():
            object.__setattr__(self, k, v)


DataType = Enum(FLOAT="FLOAT", HALF="HALF", INT32="INT32", INT64="INT64", BOOL="BOOL", UINT8="UINT8", BF16="BF16")
TensorIOMode = Enum(INPUT="INPUT", OUTPUT="OUTPUT")


PROFILES = (((1, 3, 16, 16), (1, 3, 224, 224), (1, 3, 320, 320)),  # per batch size, as to_tensorrt builds them
            ((4, 3, 16, 16), (4, 3, 224, 224), (4, 3, 320, 320)))


class Context(Strict):
    """Like TensorRT: a new context is on profile 0, and a shape outside the active profile is refused."""

    def __init__(self):
        self._shapes, self._addresses, self._runs, self._profiled = {}, {}, 0, 0
        self.active_optimization_profile = 0

    def set_optimization_profile_async(self, index, stream_handle):
        assert isinstance(stream_handle, int) and 0 <= index < len(PROFILES)
        self.active_optimization_profile = index
        return True

    def set_input_shape(self, name, shape):
        assert name == "input"
        low, _, high = PROFILES[self.active_optimization_profile]
        if not all(a <= x <= b for a, x, b in zip(low, shape, high)):
            return False
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        batch = self._shapes["input"][0]
        return self._shapes["input"] if name == "input" else (batch, 10)

    def set_tensor_address(self, name, ptr):
        assert isinstance(ptr, int) and ptr != 0
        self._addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle):
        assert set(self._addresses) == {"input", "logits"} and isinstance(stream_handle, int)
        self._runs += 1
        profiler = getattr(self, "_profiler", None)
        if profiler is not None:  # TensorRT reports every layer of an enqueue to the attached IProfiler
            self._profiled += 1
            for name, ms in LAYER_TIMES:
                profiler.report_layer_time(name, ms)
        return True

    @property
    def profiler(self):  # IExecutionContext.profiler ("profiler" is the tail of "report_to_profiler")
        return getattr(self, "_profiler", None)

    @profiler.setter
    def profiler(self, value):
        assert value is None or isinstance(value, IProfiler)
        object.__setattr__(self, "_profiler", value)


#: what the fake engine's layers take, by TensorRT layer name (fused layers, a reformat, a Myelin region)
LAYER_TIMES = (("conv1 + relu1", 0.2), ("Reformatting CopyNode for Input Tensor 0 to dw", 0.05),
               ("PWN(relu2)", 0.3), ("pw + add", 0.25), ("{ForeignNode[gap...fc]}", 0.1))


class IProfiler:
    """The base class a Python profiler derives from."""

    def __init__(self):
        pass


class Inspector(Strict):
    def get_engine_information(self, fmt):
        import json

        assert fmt == LayerInformationFormat.JSON
        layers = [{"Name": n} for n, _ in LAYER_TIMES]
        layers[2]["Metadata"] = "[ONNX Layer: dw]\x1e[ONNX Layer: relu2]"  # detailed verbosity names the nodes
        return json.dumps({"Layers": layers, "Bindings": ["input", "logits"]})


LayerInformationFormat = Enum(JSON="JSON", ONELINE="ONELINE")


class Engine(Strict):
    num_io_tensors = 2
    num_optimization_profiles = len(PROFILES)
    device_memory_size_v2 = 3 << 20

    def __init__(self):
        self._contexts = []

    def get_tensor_name(self, i):
        return ("input", "logits")[i]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return DataType.FLOAT

    def get_tensor_shape(self, name):
        return (-1, 3, -1, -1) if name == "input" else (-1, 10)

    def get_tensor_profile_shape(self, name, index):
        assert name == "input"
        return PROFILES[index]

    def create_engine_inspector(self):
        return Inspector()

    def create_execution_context(self):
        self._contexts.append(Context())
        return self._contexts[-1]


class Runtime(Strict):
    def __init__(self, logger):
        assert isinstance(logger, Logger)

    def deserialize_cuda_engine(self, data):
        return Engine() if data == ENGINE_BYTES else None


class Logger(Strict):
    WARNING = "WARNING"

    def __init__(self, severity):
        self._severity = severity


def fake_tensorrt():
    mod = types.ModuleType("tensorrt")
    mod.__version__ = "10.16.1.11"
    for obj in (Logger, Runtime, DataType, TensorIOMode, IProfiler, LayerInformationFormat):
        name = obj.__name__ if isinstance(obj, type) else {
            id(DataType): "DataType", id(TensorIOMode): "TensorIOMode",
            id(LayerInformationFormat): "LayerInformationFormat"}[id(obj)]
        assert allowed(name)
        setattr(mod, name, obj)
    return mod


class CpuTrtRunner(TrtRunner):
    """TrtRunner with its CUDA parts on the CPU."""

    def _cuda_setup(self, torch):
        pass

    def _sync_device(self, torch):
        pass

    def _new_stream(self, torch):
        return types.SimpleNamespace(cuda_stream=1234, synchronize=lambda: None)

    def _new_events(self, torch):
        return CpuEvent(), CpuEvent()

    def _device_tensor(self, torch, shape, dtype, gen=None):
        return torch.randn(shape, generator=gen).to(dtype) if gen is not None else torch.empty(shape, dtype=dtype)

    def _gpu_name(self, torch):
        return "fake GPU"


@pytest.fixture
def engine_file(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", fake_tensorrt())
    path = tmp_path / "m.engine"
    path.write_bytes(ENGINE_BYTES)
    return str(path)


def test_strict_stand_in_refuses_removed_names():
    assert allowed("execute_async_v3") and allowed("Logger") and allowed("Runtime")
    for gone in ("execute_async_v2", "get_binding_shape", "num_bindings", "device_memory_size", "nptype_x"):
        assert not allowed(gone)
    with pytest.raises(AttributeError):
        Engine().get_binding_shape  # noqa: B018


def test_load_bind_run(engine_file):
    runner = CpuTrtRunner("cuda:0")
    runner.load(Workload.from_file(engine_file, batch=4, resolution=16))
    ctx = runner._context
    assert ctx._shapes["input"] == (4, 3, 16, 16) and ctx.active_optimization_profile == 1
    assert runner.settings()["optimization_profile"] == 1
    assert runner._buffers["logits"].shape == (4, 10)
    assert ctx._addresses == {n: t.data_ptr() for n, t in runner._buffers.items()}
    assert runner.time_once() >= 0 and ctx._runs == 1
    runner.infer()
    assert ctx._runs == 2
    assert runner.memory()["trt_engine_device_memory_mb"]["value_mb"] == 3.0
    settings = runner.settings()
    assert settings["tensor_shapes"] == {"input": [4, 3, 16, 16], "logits": [4, 10]}
    assert settings["tensorrt_version"] == "10.16.1.11"
    runner.close()
    assert not hasattr(runner, "_engine")


def test_not_an_engine(engine_file, tmp_path):
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"junk")
    with pytest.raises(Unsupported, match="not a TensorRT engine"):
        CpuTrtRunner("cuda:0").load(Workload.from_file(str(bad), batch=1, resolution=16))


def test_trt_checks():
    assert "runs engine workloads" in TrtRunner.unsupported_reason(Workload.from_file("m.onnx", 1, 16))
    train = Workload.from_file("m.plan", 1, 16, mode="train")
    assert "does not support mode 'train'" in TrtRunner.unsupported_reason(train)


@pytest.mark.parametrize("batch,resolution,profile", [(1, 224, 0), (4, 224, 1), (4, 320, 1)])
def test_the_profile_holding_the_batch_is_selected(engine_file, batch, resolution, profile):
    runner = CpuTrtRunner("cuda:0")
    runner.load(Workload.from_file(engine_file, batch=batch, resolution=resolution))
    assert runner._context.active_optimization_profile == profile == runner.profile_index
    assert runner._context._shapes["input"] == (batch, 3, resolution, resolution)


@pytest.mark.parametrize("batch,resolution", [(2, 224), (8, 224), (1, 512)])
def test_a_shape_no_profile_accepts_is_unsupported(engine_file, batch, resolution):
    with pytest.raises(Unsupported, match="no optimization profile"):
        CpuTrtRunner("cuda:0").load(Workload.from_file(engine_file, batch=batch, resolution=resolution))


def test_layer_times_join_fused_layers_and_reformats(engine_file, tmp_path):
    """trt per-layer times through the strict stand-in: IProfiler reports, the engine inspector's
    metadata, fused/Myelin names joined to the ONNX nodes of the graph the engine came from."""
    from hwprofile.analysis import from_raw, report
    from hwprofile.runners import onnx_layers
    from layer_fixtures import tiny_cnn

    info = onnx_layers(tiny_cnn(tmp_path / "tiny.onnx", res=16), 1)
    runner = CpuTrtRunner("cuda:0")
    runner.load(Workload.from_file(engine_file, batch=1, resolution=16))
    raw = runner.layer_times(8, info)
    ctx = runner._context
    assert ctx._profiled == 3 + 8 and ctx._runs == 3 + 3 + 8  # warm-up, profiled warm-up, profiled: never interleaved
    assert ctx.profiler is None and raw["restored"]  # detached again: later runs are clean
    assert raw["time_source"] == "gpu" and not raw["notes"]  # the inspector named the ONNX nodes
    rows = {r["name"]: r for r in raw["rows"]}
    assert rows["conv1 + relu1"]["onnx_nodes"] == ["conv1", "relu1"] and rows["conv1 + relu1"]["flops"] == \
        info.flops["conv1"]
    assert rows["PWN(relu2)"]["onnx_nodes"] == ["dw", "relu2"] and rows["PWN(relu2)"]["depthwise"]
    assert rows["pw + add"]["onnx_nodes"] == ["pw", "add"]
    assert rows["{ForeignNode[gap...fc]}"]["onnx_nodes"] == ["gap", "flat", "fc"]
    reformat = rows["Reformatting CopyNode for Input Tensor 0 to dw"]
    assert reformat["kind"] == "overhead" and reformat["onnx_nodes"] == []
    assert rows["PWN(relu2)"]["time_ms"] == pytest.approx(0.3) and raw["profiled_run_ms"] > 0
    joined = {n for r in raw["rows"] for n in r["onnx_nodes"]}
    assert joined == set(info.order)  # every ONNX node is in exactly one TensorRT layer
    peaks = {"flops_per_s": 100e12, "bytes_per_s": 4e12}  # a GPU: ridge 25 flop/byte
    rep = report(from_raw(raw), model="tiny", runner="trt", device="cuda:0", batch=1, peaks=peaks)
    by = {r["name"]: r for r in rep.rows}
    assert by["PWN(relu2)"]["bound"] == "memory" and rep.rows[-1]["kind"] == "gap"
    assert rep.layer_sum_ms == pytest.approx(0.9) and 0 < rep.memory_bound_time_fraction <= 1
    assert sum(r["time_ms"] for r in rep.rows) == pytest.approx(raw["profiled_run_ms"])
