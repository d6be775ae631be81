"""A strict stand-in for the ``tensorrt`` module: refuses every name the real bindings lack.

The allowed names are the identifiers read from the TensorRT binding libraries
(``tests/data/tensorrt/identifiers-*.txt``; ``common`` = present in both 10.16 and 11.4).
Every public attribute read or written -- on the module, its classes and enums, and every
object it returns -- must be in that list, else ``AttributeError``; so a call removed in 11.x
(``BuilderFlag.FP16``, ``EXPLICIT_BATCH``) or a misspelt one fails the tests.

Those lists come from the libraries' strings, in which the linker merges a short literal
into a longer one that ends with it. ``FOLDED`` names the few documented API names the
builder uses that are missing for that reason; each is accepted only if it is a proper
suffix of a listed identifier (checked when the stand-in is made).

Every call is appended to ``module._calls`` as ``(name, args...)`` so tests can check the
builder's logic; ``module._state`` controls failures (``parse_ok``, ``build_ok``).

The engine it "builds" is real enough to be run by the ``trt`` runner: the plan bytes
(``ENGINE:<profiles>`` and a JSON line) carry the parsed graph's input and output (names, dtypes,
shapes, read from the ONNX file) and the optimization profiles set on the builder; the runtime's
engine and its execution contexts enforce those profiles like TensorRT (a new context is on
profile 0; a shape outside the active profile is refused). ``execute_async_v3`` computes nothing.

Its layers are the graph's nodes in pairs, with opaque names (``Kernel_0``, ...), as fused kernels are:
the engine inspector names each layer's ONNX nodes (``[ONNX Layer: x]``) only when the engine was built
with ``ProfilingVerbosity.DETAILED``, else it lists bare names, like TensorRT. An ``IProfiler`` attached to
an execution context (``context.profiler``) gets ``report_layer_time(name, 0.1)`` for every layer of every
run; ``context._profiled`` counts those runs.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

LISTS = Path(__file__).parent / "data" / "tensorrt"
VERSIONS = {"common": "11.4.0.106", "10.16.1.11": "10.16.1.11", "11.4.0.106": "11.4.0.106"}
#: Real API names (NVIDIA's TensorRT Python API docs) whose literal is folded into a longer string.
FOLDED = {"Logger": "ILogger", "Builder": "IExprBuilder", "Runtime": "IPluginV3OneRuntime",
          "serialize": "get_fields_to_serialize", "num_errors": "get_num_errors",
          "DataType": "PluginArgDataType", "INPUT": "CONDITIONAL_INPUT", "OUTPUT": "CONDITIONAL_OUTPUT",
          "profiler": "report_to_profiler"}  # IExecutionContext.profiler


def allowed_names(which: str = "common") -> frozenset[str]:
    names = {line.strip() for line in (LISTS / f"identifiers-{which}.txt").read_text().splitlines() if line.strip()}
    for name, longer in FOLDED.items():
        assert longer in names and longer.endswith(name) and longer != name, (name, longer)
        names.add(name)
    return frozenset(names)


def _check(allowed: frozenset, owner: str, name: str) -> None:
    if not name.startswith("_") and name not in allowed:
        raise AttributeError(f"tensorrt stand-in: {owner}.{name} is not in the TensorRT API list")


class _StrictMeta(type):
    """Class-level strictness (``trt.BuilderFlag.FP16``, ``trt.Logger.WARNING``)."""

    def __getattribute__(cls, name: str):
        if not name.startswith("_"):
            _check(type.__getattribute__(cls, "_allowed"), type.__getattribute__(cls, "__name__"), name)
        return type.__getattribute__(cls, name)


class _Strict(metaclass=_StrictMeta):
    """Instance-level strictness for reads and writes."""

    _allowed: frozenset = frozenset()

    def __getattribute__(self, name: str):
        if not name.startswith("_"):
            _check(type(self)._allowed, type(self).__name__, name)
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value) -> None:
        if not name.startswith("_"):
            _check(type(self)._allowed, type(self).__name__, name)
        object.__setattr__(self, name, value)


class _StrictModule(types.ModuleType):
    def __getattribute__(self, name: str):
        if not name.startswith("_"):
            _check(types.ModuleType.__getattribute__(self, "_allowed"), "tensorrt", name)
        return types.ModuleType.__getattribute__(self, name)


def make(which: str = "common") -> types.ModuleType:
    """A fresh stand-in module using identifier list ``which`` (common, 10.16.1.11, 11.4.0.106)."""
    allowed = allowed_names(which)
    mod = _StrictModule("tensorrt")
    mod._allowed = allowed
    mod._calls = calls = []
    mod._state = state = {"parse_ok": True, "build_ok": True, "device_memory": 123 << 20, "errors": ["bad node"]}

    def strict(name: str, bases: tuple = (_Strict,), **attrs) -> type:
        return _StrictMeta(name, bases, {"_allowed": allowed, **attrs})

    def enum(name: str, members: dict) -> type:
        return strict(name, **{k: v for k, v in members.items() if k in allowed})

    def record(*entry) -> None:
        calls.append(entry)

    # ----- enums (members outside the list simply do not exist) -----
    mod.BuilderFlag = enum("BuilderFlag", {"FP16": 0, "BF16": 1, "INT8": 2, "TF32": 7, "REFIT": 4, "STRIP_PLAN": 20})
    mod.NetworkDefinitionCreationFlag = enum("NetworkDefinitionCreationFlag",
                                             {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
    mod.MemoryPoolType = enum("MemoryPoolType", {"WORKSPACE": 0, "DLA_MANAGED_SRAM": 1, "TACTIC_DRAM": 4})
    mod.ProfilingVerbosity = enum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2})
    mod.LayerInformationFormat = enum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1})

    class _HostMemory(bytes):  # buffer protocol, like IHostMemory
        pass

    HostMemory = strict("IHostMemory", (_Strict, _HostMemory))

    class _TimingCache:
        def __init__(self, data: bytes):
            self._data = bytes(data)

        def serialize(self):
            record("serialize")
            return HostMemory(b"TC1" + self._data[3:] + b"+")

    TimingCache = strict("ITimingCache", (_Strict, _TimingCache))

    class _Profile:
        def set_shape(self, name, min, opt, max):  # noqa: A002 - TensorRT's argument names
            record("set_shape", name, tuple(min), tuple(opt), tuple(max))
            object.__setattr__(self, "_shape", [list(min), list(opt), list(max)])
            return True

    Profile = strict("IOptimizationProfile", (_Strict, _Profile))

    class _Config:
        def __init__(self):
            self._cache = None
            self._profiles = 0
            self._shapes = []
            self._verbosity = mod.ProfilingVerbosity.LAYER_NAMES_ONLY

        @property
        def profiling_verbosity(self):
            return self._verbosity

        @profiling_verbosity.setter
        def profiling_verbosity(self, value):
            record("profiling_verbosity", value)
            object.__setattr__(self, "_verbosity", value)

        def set_memory_pool_limit(self, pool, size):
            record("set_memory_pool_limit", pool, size)

        def set_flag(self, flag):
            record("set_flag", flag)

        def create_timing_cache(self, data):
            record("create_timing_cache", bytes(data))
            return TimingCache(data or b"TC1")

        def set_timing_cache(self, cache, ignore_mismatch):
            record("set_timing_cache", ignore_mismatch)
            self._cache = cache
            return True

        def get_timing_cache(self):
            return self._cache

        def add_optimization_profile(self, profile):
            record("add_optimization_profile")
            self._shapes.append(getattr(profile, "_shape", None))
            self._profiles += 1
            return self._profiles - 1

    Config = strict("IBuilderConfig", (_Strict, _Config))

    class _Network:
        def __init__(self, flags):
            self._flags = flags
            self._io = None  # what the parser read from the ONNX file

    Network = strict("INetworkDefinition", (_Strict, _Network))

    class _Builder:
        def __init__(self, logger):
            record("Builder")

        def create_network(self, flags):
            record("create_network", flags)
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            record("build_serialized_network", network._flags, config._profiles)
            if not state["build_ok"]:
                return None
            meta = {"io": network._io, "profiles": config._shapes,
                    "detailed": config._verbosity == mod.ProfilingVerbosity.DETAILED}
            return HostMemory(b"ENGINE:" + bytes(str(config._profiles), "ascii") + b"\n"
                              + json.dumps(meta).encode())

    mod.Builder = strict("Builder", (_Strict, _Builder))

    class _Error:
        def __init__(self, text):
            self._text = text

        def __str__(self):
            return self._text

    Error = strict("IParserError", (_Strict, _Error))

    class _Parser:
        def __init__(self, network, logger):
            self._ok = None
            self._network = network

        def parse_from_file(self, path):
            record("parse_from_file", str(path))
            self._ok = state["parse_ok"] and Path(path).is_file()
            if self._ok:
                self._network._io = _graph_io(path)
            return self._ok

        @property
        def num_errors(self):
            return 0 if self._ok else len(state["errors"])

        def get_error(self, i):
            return Error(state["errors"][i])

    mod.OnnxParser = strict("OnnxParser", (_Strict, _Parser))

    mod.DataType = enum("DataType", {"FLOAT": "FLOAT", "HALF": "HALF", "INT32": "INT32", "INT64": "INT64",
                                     "BOOL": "BOOL", "UINT8": "UINT8", "BF16": "BF16"})
    mod.TensorIOMode = enum("TensorIOMode", {"INPUT": "INPUT", "OUTPUT": "OUTPUT", "NONE": "NONE"})

    class _IProfiler:
        def __init__(self):
            pass

    mod.IProfiler = strict("IProfiler", (_Strict, _IProfiler))

    class _Context:
        def __init__(self, engine):
            self._engine, self._shapes, self._addresses, self._runs, self._profiled = engine, {}, {}, 0, 0
            object.__setattr__(self, "active_optimization_profile", 0)
            object.__setattr__(self, "_profiler", None)

        @property
        def profiler(self):
            return self._profiler

        @profiler.setter
        def profiler(self, value):
            assert value is None or isinstance(value, mod.IProfiler)
            object.__setattr__(self, "_profiler", value)

        def set_optimization_profile_async(self, index, stream_handle):
            assert isinstance(stream_handle, int) and 0 <= index < len(self._engine._profiles)
            object.__setattr__(self, "active_optimization_profile", index)
            return True

        def set_input_shape(self, name, shape):
            assert name == self._engine._io["input"]["name"]
            profiles = self._engine._profiles
            if profiles:
                low, _, high = profiles[self.active_optimization_profile]
                if not all(a <= x <= b for a, x, b in zip(low, shape, high)):
                    return False
            self._shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            io = self._engine._io
            if name == io["input"]["name"]:
                return self._shapes[name]
            batch = self._shapes[io["input"]["name"]][0]
            return tuple(batch if not isinstance(d, int) or d < 1 else d for d in io["output"]["shape"])

        def set_tensor_address(self, name, ptr):
            assert isinstance(ptr, int) and ptr != 0
            self._addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle):
            io = self._engine._io
            assert set(self._addresses) == {io["input"]["name"], io["output"]["name"]}
            assert isinstance(stream_handle, int)
            self._runs += 1
            if self._profiler is not None:  # every layer of the run, as TensorRT reports them
                self._profiled += 1
                for name, _ in self._engine._layers():
                    self._profiler.report_layer_time(name, 0.1)
            return True

    Context = strict("IExecutionContext", (_Strict, _Context))

    class _Engine:
        def __init__(self, plan):
            self._plan = plan
            head, _, meta = plan.partition(b"\n")
            meta = json.loads(meta) if meta else {}
            self._io = meta.get("io")
            self._profiles = meta.get("profiles") or []

        device_memory_size_v2 = property(lambda self: state["device_memory"])
        device_memory_size = property(lambda self: state["device_memory"])  # 10.x only: refused by the list
        num_optimization_profiles = property(lambda self: int(self._plan.partition(b"\n")[0].split(b":")[1]))
        num_io_tensors = property(lambda self: 2)

        def get_tensor_name(self, i):
            return (self._io["input"]["name"], self._io["output"]["name"])[i]

        def get_tensor_mode(self, name):
            return mod.TensorIOMode.INPUT if name == self._io["input"]["name"] else mod.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            which = "input" if name == self._io["input"]["name"] else "output"
            return getattr(mod.DataType, self._io[which]["dtype"])

        def get_tensor_shape(self, name):
            which = "input" if name == self._io["input"]["name"] else "output"
            return tuple(d if isinstance(d, int) and d > 0 else -1 for d in self._io[which]["shape"])

        def get_tensor_profile_shape(self, name, index):
            assert name == self._io["input"]["name"]
            return tuple(tuple(s) for s in self._profiles[index])

        def create_execution_context(self):
            return Context(self)

        def _layers(self):
            """(name, ONNX nodes) of each layer: the graph's nodes in pairs, under opaque kernel names."""
            nodes = self._io.get("nodes") or []
            return [(f"Kernel_{i // 2}", nodes[i:i + 2]) for i in range(0, len(nodes), 2)]

        def create_engine_inspector(self):
            return Inspector(self)

    Engine = strict("ICudaEngine", (_Strict, _Engine))

    class _Inspector:
        def __init__(self, engine):
            self._engine = engine

        def get_engine_information(self, fmt):
            assert fmt == mod.LayerInformationFormat.JSON
            meta = json.loads(self._engine._plan.partition(b"\n")[2] or b"{}")
            if meta.get("detailed"):
                layers = [{"Name": name, "Metadata": "\x1e".join(f"[ONNX Layer: {n}]" for n in nodes)}
                          for name, nodes in self._engine._layers()]
            else:
                layers = [name for name, _ in self._engine._layers()]
            return json.dumps({"Layers": layers, "Bindings": [self._engine._io["input"]["name"],
                                                              self._engine._io["output"]["name"]]})

    Inspector = strict("EngineInspector", (_Strict, _Inspector))

    class _Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            record("deserialize_cuda_engine")
            plan = bytes(plan)
            return Engine(plan) if plan.startswith(b"ENGINE:") else None

    mod.Runtime = strict("Runtime", (_Strict, _Runtime))

    class _Logger:
        def __init__(self, severity):
            self._severity = severity

    mod.Logger = strict("Logger", (_Strict, _Logger), **{k: i for i, k in enumerate(
        ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")) if k in allowed})
    mod.__version__ = VERSIONS[which]
    return mod


def _graph_io(path) -> dict:
    """The ONNX file's image input and first output: names, TensorRT dtype names, shapes (symbolic dims as
    None), as TensorRT's parser would define them."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    dtypes = {1: "FLOAT", 10: "HALF"}

    def desc(value):
        tt = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField("shape") \
            else [None, None]
        return {"name": value.name, "dtype": dtypes.get(tt.elem_type, "FLOAT"), "shape": dims}

    inputs = [i for i in model.graph.input if i.name not in inits]
    return {"input": desc(inputs[0]), "output": desc(model.graph.output[0]),
            "nodes": [n.name for n in model.graph.node]}
