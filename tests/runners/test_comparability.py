"""What each runner declares about its settings, and compare/check judging from those declarations only.

Per runner: every settings field it writes (its own ``settings()`` plus what every measurement adds) is
declared exactly once, as a result, an observation or bookkeeping; a changed result field refuses a
comparison on one device, an observation warns, bookkeeping is silent. The issue's three cases are
pinned by name: ``cudnn_allow_tf32`` is a precision setting (it was classed as a version),
``compile`` / ``channels_last`` / ``input_dtype`` refuse (they only warned), ``node_placement`` is an
observation that warns (it was ignored because "node" was on a word list).
"""

import json
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
np = pytest.importorskip("numpy")
sys.path.insert(0, str(Path(__file__).parents[1] / "measure"))

from onnx_model import tiny_onnx  # noqa: E402
from test_trt_runner import ENGINE_BYTES, CpuTrtRunner, fake_tensorrt  # noqa: E402

from hwprofile.analysis import (  # noqa: E402
    Side,
    comparability,
    stable_fingerprint,
)
from hwprofile.analysis._comparability import UNKNOWN, fingerprint_effect, flatten, setting_effect  # noqa: E402
from hwprofile.measure._core import _settings, _timing_settings  # noqa: E402
from hwprofile.profile import (  # noqa: E402
    Profile,
    Record,
    TimingConfig,
    Workload,
)
from hwprofile.runners import BOOKKEEPING, OBSERVATION, RESULT, RUNNER_NAMES, Runner, runner_class  # noqa: E402
from hwprofile.runners._base import EFFECTS  # noqa: E402
from hwprofile.runners._fake import FakeRunner  # noqa: E402
from hwprofile.runners._ort import OrtCpuRunner  # noqa: E402
from hwprofile.runners._ort_gpu import OrtCudaRunner, OrtTensorrtRunner  # noqa: E402
from hwprofile.runners._torch import TorchCpuRunner, TorchCudaRunner  # noqa: E402
from hwprofile.zoo import get_spec  # noqa: E402

ROOT = Path(__file__).parents[2]


# ------------------------------------------------------------------ what each runner writes

def _common(runner: str, workload: Workload) -> dict:
    """What hwprofile.measure._core, the executors and hwprofile.profile._quality add to every measurement."""
    launcher = types.SimpleNamespace(info=lambda: {"isolation": "forkserver", "server_threads_at_fork": 1,
                                                   "server_preloaded": ["torch"], "server_import_s": 0.5})
    one = {"warmup_iters": 10, "warmup_s": 0.2, "timed_s": 1.0, "stop_reason": "ci", "load_s": 0.1,
           "child_threads": 2}
    return {**_settings(runner, "cpu", workload, TimingConfig(), launcher), **_timing_settings([one]),
            "foreign_cpu_cores": [0.0], "executor": "ray", "node": "n1", "node_address": "10.0.0.1",
            "node_hostname": "h1", "ray_retried_after": ["node died"],  # executors/local.py, executors/ray.py
            "system_check": {"cpu_other_cores": 0.0, "window_s": 0.1}, "quality_attempts": [{"quality": "noisy"}],
            "gpu_watch": {"window_s": 1.0, "other_processes": []},  # hwprofile.profile._quality
            "gpu_clocks": {"window_s": 1.0, "below_app_clocks_share": {}}}  # hwprofile.trackers.clocks (child)


def _spec_workload(**options):
    return Workload.from_spec(get_spec("RegNetX-200MF"), batch=1, resolution=32, options={"threads": 1, **options})


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    return str(tiny_onnx(tmp_path_factory.mktemp("cmp") / "tiny.onnx"))


def _torch_cpu(tmp_path, onnx_path):
    with TorchCpuRunner() as runner:
        w = _spec_workload(channels_last=True, seed=3)
        runner.load(w)
        return w, runner.settings()


def _torch_cuda(tmp_path, onnx_path):
    """The torch:cuda fields without a GPU: the device name unreadable on this CPU build (recorded as such)."""
    runner = TorchCudaRunner("cuda:0")
    w = _spec_workload(compile=True, cuda_graphs=True)
    runner.workload, runner._half, runner._dev = w, False, torch.device("cuda:0")
    return w, runner.settings()


def _ort_cpu(tmp_path, onnx_path):
    with OrtCpuRunner() as runner:
        w = Workload.from_file(onnx_path, batch=2, resolution=16,
                               options={"threads": 1, "iobinding": True, "cpu_mem_arena": False, "mem_pattern": False,
                                        "seed": 1})
        runner.load(w)
        return w, runner.settings()


def _ort_gpu(cls, tmp_path, onnx_path):
    """A GPU runner's settings() on a session stand-in: the provider options it asks for (with a stream) echoed
    back as ONNX Runtime does, a placement as node_placement() reads it."""
    runner = cls("cuda:0")
    w = Workload.from_file(onnx_path, 2, 16, options={"threads": 1, "trt_cache_dir": str(tmp_path)})
    runner.workload, runner._stream = w, types.SimpleNamespace(cuda_stream=1234)
    asked = runner._providers()
    runner._so = runner._session_options(ort, w.options)
    runner._sess = types.SimpleNamespace(get_provider_options=lambda: {runner.provider: dict(asked[0][1])})
    runner._active = [p if isinstance(p, str) else p[0] for p in asked]
    runner._iobinding, runner._feed = True, {"input": np.zeros((2, 3, 16, 16), dtype=np.float32)}
    runner._placement = {"by_provider": {runner.provider: 9, "CPUExecutionProvider": 1},
                         "elsewhere": {"Shape on CPUExecutionProvider": 1}}
    return w, runner.settings()


def _trt(tmp_path, onnx_path, build_record=True):
    before = sys.modules.get("tensorrt")
    sys.modules["tensorrt"] = fake_tensorrt()
    try:
        tmp_path.mkdir(exist_ok=True)
        path = tmp_path / "key.engine"
        path.write_bytes(ENGINE_BYTES)
        if build_record:  # what exporters.to_tensorrt writes next to the engine
            path.with_suffix(".json").write_text(json.dumps({"precision": "fp16", "strongly_typed": False,
                                                             "workspace_mb": 1024, "build_s": 3.0}))
        runner = CpuTrtRunner("cuda:0")
        w = Workload.from_file(str(path), batch=1, resolution=16, options={"seed": 2})
        runner.load(w)
        return w, runner.settings()
    finally:
        if before is None:
            sys.modules.pop("tensorrt", None)
        else:
            sys.modules["tensorrt"] = before


WRITERS = {
    "torch:cpu": _torch_cpu, "torch:cuda": _torch_cuda, "ort:cpu": _ort_cpu,
    "ort:cuda": lambda t, o: _ort_gpu(OrtCudaRunner, t, o),
    "ort:tensorrt": lambda t, o: _ort_gpu(OrtTensorrtRunner, t, o), "trt": _trt,
}


def test_every_built_in_runner_is_covered():
    assert set(WRITERS) == set(RUNNER_NAMES)


# ids never plain "trt": conftest skips tests with a "trt" keyword without TensorRT and a GPU
RUNNER_IDS = [f"runner={n}" for n in sorted(WRITERS)]


@pytest.mark.parametrize("name", sorted(WRITERS), ids=RUNNER_IDS)
def test_every_field_a_runner_writes_is_declared_exactly_once(name, tmp_path, onnx_path):
    cls = runner_class(name)
    table = cls.declarations()  # raises when a field is declared in two classes
    assert {e for e, _ in table.values()} <= set(EFFECTS)
    workload, own = WRITERS[name](tmp_path, onnx_path)
    written = {**_common(name, workload), **own}
    undeclared = sorted(k for k in flatten(written) if cls.declared(k) is None)
    assert undeclared == []
    assert {f"options.{o}" for o in cls.option_names} <= set(table)  # every option it accepts, too
    # nothing of what it writes falls to the unknown-field rule
    assert all(setting_effect(k, (cls,))[0] != UNKNOWN for k in flatten(written))


def test_trt_records_the_engine_precision_and_build(tmp_path, onnx_path):
    _, settings = _trt(tmp_path, onnx_path)
    assert settings["tensor_dtypes"] == {"input": "FLOAT", "logits": "FLOAT"}
    assert settings["engine_build"] == {"precision": "fp16", "strongly_typed": False, "workspace_mb": 1024,
                                        "profiling_verbosity": "layer_names_only"}  # TensorRT's default
    _, settings = _trt(tmp_path / "elsewhere", onnx_path, build_record=False)  # an engine made elsewhere
    assert "engine_build" not in settings


def test_a_field_declared_twice_is_refused():
    class Twice(Runner):
        name = "twice"
        result_settings = {"threads": "thread setting"}
        observed_settings = ("threads",)

    with pytest.raises(ValueError, match="'threads' is declared twice"):
        Twice.declarations()


def test_the_fake_runner_declares_what_it_writes():
    runner = FakeRunner()
    w = Workload.from_spec(get_spec("RegNetX-200MF"), 1, 32, options={"latencies_ms": [1.0], "sleep": False})
    runner.load(w)
    runner.infer()
    written = flatten({**_common("fake", w), **runner.settings()})
    assert [k for k in written if FakeRunner.declared(k) is None] == []


@pytest.mark.parametrize("path", sorted((ROOT / "profiles").glob("*__*.json")), ids=lambda p: p.name)
def test_committed_profiles_hold_only_declared_fields(path):
    """Records measured by the real pipeline (measure, local executor, quality) on this project's machine."""
    for r in Profile.load(path).records:
        cls = runner_class(r.runner)
        assert [k for k in flatten(r.settings.to_dict()) if cls.declared(k) is None] == [], r.label


# ------------------------------------------------------------------ compare judges from them

FP = {"kind": "gpu", "libraries": {"torch": "2.13.0+cu130", "onnxruntime": "1.32.0", "tensorrt": "10.16.1"},
      "gpu": {"name": "Some GPU", "driver": "580.1", "uuid": "GPU-1"}, "peaks": {"copy": {"gb_per_s": 900.0}}}


def _record(runner: str, settings: dict, device: str = "dev") -> Record:
    return Record.from_dict({"device_id": device, "model": "m", "strategy": None, "scale": 1.0, "batch": 1,
                             "runner": runner, "precision": "fp32", "mode": "infer", "resolution": 224,
                             "flops": None, "params": None, "acts": None, "status": "ok",
                             "latency": {"median_ms": 1.0}, "settings": settings})


def _found(runner, base: dict, cur: dict, *, fp_base=FP, fp_cur=FP, device_cur="dev", runner_cur=None):
    b = Side("a", "dev", fp_base, (_record(runner, base),))
    c = Side("b", device_cur, fp_cur, (_record(runner_cur or runner, cur, device_cur),))
    return [(m.kind, m.field, m.severity) for m in comparability(b, c, list(zip(b.records, c.records)))]


#: (runner, field, base value, current value, (kind, severity) or None): what a changed field means
CASES = [
    # the issue's cases
    ("torch:cuda", "cudnn_allow_tf32", True, False, ("precision", "refuse")),
    ("torch:cpu", "compile", False, True, ("setting", "refuse")),
    ("torch:cpu", "channels_last", False, True, ("memory format", "refuse")),
    ("ort:cpu", "input_dtype", "float32", "float16", ("precision", "refuse")),
    ("ort:cuda", "node_placement", {"by_provider": {"CUDAExecutionProvider": 10}},
     {"by_provider": {"CUDAExecutionProvider": 8}}, ("setting", "warn")),
    # result settings, runner by runner
    ("torch:cpu", "threads", 2, 4, ("thread setting", "refuse")),
    ("torch:cpu", "interop_threads", 2, 1, ("thread setting", "refuse")),
    ("torch:cpu", "torch_version", "2.13.0", "2.12.0", ("backend version", "refuse")),
    ("torch:cuda", "matmul_fp32_precision", "ieee", "tf32", ("precision", "refuse")),
    ("torch:cuda", "precision_mode", "half model", "autocast fp16", ("precision", "refuse")),
    ("torch:cuda", "cuda_graphs", False, True, ("setting", "refuse")),
    ("torch:cuda", "cudnn_version", 91000, 90100, ("backend version", "refuse")),
    ("ort:cpu", "providers_active", ["CPUExecutionProvider"], ["DnnlExecutionProvider"], ("provider", "refuse")),
    ("ort:cpu", "graph_optimization_level", "ORT_ENABLE_ALL", "ORT_ENABLE_BASIC", ("setting", "refuse")),
    ("ort:cpu", "execution_mode", "ORT_SEQUENTIAL", "ORT_PARALLEL", ("setting", "refuse")),
    ("ort:cpu", "inter_op_threads", 1, 2, ("thread setting", "refuse")),
    ("ort:cpu", "iobinding", False, True, ("setting", "refuse")),
    ("ort:cuda", "provider_options", {"cudnn_conv_algo_search": "EXHAUSTIVE"}, {"cudnn_conv_algo_search": "DEFAULT"},
     ("provider", "refuse")),
    ("ort:tensorrt", "tensorrt_typing", "weak", "strong", ("precision", "refuse")),
    ("ort:tensorrt", "provider_options", {"trt_fp16_enable": "True"}, {"trt_fp16_enable": "False"},
     ("precision", "refuse")),
    ("trt", "tensor_dtypes", {"input": "FLOAT"}, {"input": "HALF"}, ("precision", "refuse")),
    ("trt", "engine_build", {"strongly_typed": True}, {"strongly_typed": False}, ("precision", "refuse")),
    ("trt", "engine_build", {"workspace_mb": 1024}, {"workspace_mb": 4096}, ("setting", "refuse")),
    ("trt", "tensorrt_version", "10.16.1", "11.4.0", ("backend version", "refuse")),
    # observations warn
    ("torch:cpu", "foreign_cpu_cores", [0.01], [0.9], ("setting", "warn")),
    ("ort:cpu", "system_check", {"cpu_other_cores": 0.0}, {"cpu_other_cores": 1.2}, ("setting", "warn")),
    ("trt", "executor", "local", "ray", ("setting", "warn")),
    ("torch:cuda", "gpu", "GPU A", "GPU A (MIG 1g)", ("setting", "warn")),
    # bookkeeping is never compared
    ("torch:cpu", "warmup_iters", [10], [25], None),
    ("ort:cpu", "timed_s", [1.0], [2.0], None),
    ("ort:cpu", "node", "vm-1", "vm-2", None),
    ("ort:cpu", "timing", {"repeats": 1}, {"repeats": 3}, None),
    ("ort:cuda", "provider_options", {"user_compute_stream": "140001"}, {"user_compute_stream": "140777"}, None),
    ("ort:tensorrt", "provider_options", {"trt_engine_cache_path": "/a"}, {"trt_engine_cache_path": "/b"}, None),
    ("torch:cpu", "options", {"seed": 0}, {"seed": 1}, None),
    ("trt", "optimization_profile", 0, 1, None),
    # a field nobody declared (a newer hwprofile, a plugin) warns
    ("ort:cpu", "plugin_knob", 1, 2, ("setting", "warn")),
]


@pytest.mark.parametrize("runner,field,vb,vc,expected", CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_a_changed_setting_refuses_warns_or_is_silent_as_declared(runner, field, vb, vc, expected):
    found = _found(runner, {field: vb}, {field: vc})
    assert [(k, s) for k, _, s in found] == ([expected] if expected else [])
    if found:
        assert found[0][1].startswith(f"settings.{field}")


@pytest.mark.parametrize("name", sorted(WRITERS), ids=RUNNER_IDS)
def test_compare_follows_every_declaration(name):
    """Whatever a runner declares, compare does: result refuses, observation warns, bookkeeping is silent."""
    for field, (effect, kind) in runner_class(name).declarations().items():
        vb, vc = TYPED.get(field, ("a", "b"))
        found = _found(name, _nested(field, vb), _nested(field, vc))
        want = {RESULT: [(kind, "refuse")], OBSERVATION: [("setting", "warn")], BOOKKEEPING: []}[effect]
        assert [(k, s) for k, _, s in found] == want, field


#: RunnerSettings types these fields (hwprofile.profile._records): two valid, different values
TYPED = {"threads": (1, 2), "executor": ("local", "ray"), "foreign_cpu_cores": ([0.1], [0.2])}


def _nested(field: str, value) -> dict:
    out: dict = value
    for part in reversed(field.split(".")):
        out = {part: out}
    return out


def test_cudnn_allow_tf32_refuses_across_devices_as_a_precision_setting():
    """It was classed as a backend version, whose non-version values pass across devices unremarked."""
    found = _found("torch:cuda", {"cudnn_allow_tf32": True}, {"cudnn_allow_tf32": False}, device_cur="other-gpu")
    assert found == [("precision", "settings.cudnn_allow_tf32", "refuse")]


def test_across_devices_threads_and_providers_differ_by_design():
    base = {"threads": 2, "providers_active": ["CPUExecutionProvider"], "onnxruntime_version": "1.32.0"}
    cur = {"threads": 8, "providers_active": ["CUDAExecutionProvider"], "onnxruntime_version": "1.20.0"}
    found = _found("ort:cpu", base, cur, device_cur="gpu", runner_cur="ort:cuda")
    assert found == [("backend version", "settings.onnxruntime_version", "refuse")]


def test_a_field_on_one_side_only_warns_unless_bookkeeping():
    assert _found("ort:cpu", {}, {"input_dtype": "float16"}) == [
        ("setting recorded on one side only", "settings.input_dtype", "warn")]
    assert _found("ort:cpu", {}, {"node_hostname": "h"}) == []


def test_a_runner_this_process_does_not_know_gets_the_common_declarations():
    assert _found("plugin:x", {"threads": 1}, {"threads": 2}) == [("thread setting", "settings.threads", "refuse")]
    assert _found("plugin:x", {"warmup_s": [1]}, {"warmup_s": [2]}) == []
    assert _found("plugin:x", {"knob": 1}, {"knob": 2}) == [("setting", "settings.knob", "warn")]


# ------------------------------------------------------------------ the device fingerprint

def _fp(**changes) -> dict:
    fp = json.loads(json.dumps(FP))
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        fp.setdefault(section, {})[key] = value
    return fp


#: (runner, fingerprint change, (kind, severity) or None)
FINGERPRINT_CASES = [
    ("ort:cpu", {"libraries__onnxruntime": "1.20.0"}, ("backend version", "refuse")),
    ("torch:cpu", {"libraries__onnxruntime": "1.20.0"}, ("fingerprint", "warn")),  # not a library torch runs on
    ("torch:cpu", {"libraries__torch": "2.12.0"}, ("backend version", "refuse")),
    ("torch:cpu", {"libraries__torch": "2.13.0+cpu"}, None),  # local build labels are not versions
    ("torch:cuda", {"gpu__driver": "575.0"}, ("backend version", "refuse")),
    ("trt", {"libraries__tensorrt": "11.4.0"}, ("backend version", "refuse")),
    ("ort:tensorrt", {"libraries__tensorrt": "11.4.0"}, ("backend version", "refuse")),
    ("ort:cpu", {"versions__onnxruntime": "1.20.0"}, ("fingerprint recorded on one side only", "warn")),
    ("trt", {"peaks__copy": {"gb_per_s": 800.0}}, ("fingerprint", "warn")),
    ("trt", {"gpu__uuid": "GPU-2"}, None),
    ("trt", {"peaks__measured_utc": "2026-01-01"}, None),
    ("trt", {"gpu__new_reading": 1}, ("fingerprint recorded on one side only", "warn")),
    ("trt", {"gpu__name": "Other GPU"}, ("fingerprint", "warn")),
]


@pytest.mark.parametrize("runner,change,expected", FINGERPRINT_CASES,
                         ids=[f"{c[0]}.{next(iter(c[1]))}" for c in FINGERPRINT_CASES])
def test_fingerprint_fields(runner, change, expected):
    found = _found(runner, {}, {}, fp_cur=_fp(**change))
    assert [(k, s) for k, _, s in found] == ([expected] if expected else [])


def test_versions_section_and_bookkeeping_of_the_fingerprint():
    ort_cpu = (runner_class("ort:cpu"),)
    assert fingerprint_effect("versions.onnxruntime", ort_cpu) == (RESULT, "backend version")
    assert fingerprint_effect("versions.onnxruntime") == (OBSERVATION, "fingerprint")
    assert fingerprint_effect("peaks.copy.repeats")[0] == BOOKKEEPING
    assert fingerprint_effect("something_new") == (UNKNOWN, "fingerprint")
    stable = stable_fingerprint({"id": "x", "gpu": {"uuid": "u", "name": "n"}, "peaks": {"measured_utc": "t"}})
    assert stable == {"gpu.name": "n"}

