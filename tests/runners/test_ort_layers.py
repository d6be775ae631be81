"""ONNX Runtime per-layer times (issue 20): the profiled session runs alone, one session alive at a time; with the
TensorRT provider the optimized graph is never saved and its compiled subgraph is one fused row; host-side node
times of GPU providers are marked as such. Watched through a spy on ``onnxruntime.InferenceSession``."""

from __future__ import annotations

import weakref

import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from hwprofile.analysis import from_raw, report  # noqa: E402
from hwprofile.profile import Workload  # noqa: E402
from hwprofile.runners import _ort as ort_runner  # noqa: E402
from hwprofile.runners import onnx_layers  # noqa: E402
from hwprofile.runners._ort import OrtCpuRunner  # noqa: E402
from layer_fixtures import tiny_cnn  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_cnn(tmp_path_factory.mktemp("tiny") / "tiny.onnx", res=16)


class Spy:
    """Every session made, run and freed, in order; the most sessions alive at once."""

    def __init__(self):
        self.log: list[tuple[str, int, bool]] = []
        self.alive = 0
        self.most_alive = 0
        self.options: list = []


@pytest.fixture
def spy(monkeypatch):
    watch = Spy()
    real = ort.InferenceSession

    class Session(real):
        def __init__(self, path, so=None, *args, **kwargs):
            super().__init__(path, so, *args, **kwargs)
            self._profiled = bool(so is not None and so.enable_profiling)
            watch.options.append((so.enable_profiling, so.optimized_model_filepath) if so is not None else None)
            watch.alive += 1
            watch.most_alive = max(watch.most_alive, watch.alive)
            watch.log.append(("new", id(self), self._profiled))
            weakref.finalize(self, _freed, watch, id(self), self._profiled)

        def run(self, *args, **kwargs):
            watch.log.append(("run", id(self), self._profiled))
            return super().run(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", Session)
    return watch


def _freed(watch: Spy, ident: int, profiled: bool) -> None:
    watch.alive -= 1
    watch.log.append(("free", ident, profiled))


def test_the_profiled_session_runs_alone(spy, tiny):
    with OrtCpuRunner("cpu") as runner:
        runner.load(Workload.from_file(tiny, batch=1, resolution=16, options={"threads": 1}))
        for _ in range(3):
            runner.time_once()
        raw = runner.layer_times(6, onnx_layers(tiny, 1))
        after = [runner.time_once() for _ in range(3)]
    assert spy.most_alive == 1  # one session (one intra-op thread pool) alive at a time
    runs = [(kind, profiled) for kind, _, profiled in spy.log if kind == "run"]
    profiled = [i for i, (_, p) in enumerate(runs) if p]
    assert len(profiled) == 3 + 6 and profiled == list(range(profiled[0], profiled[-1] + 1))  # never interleaved
    assert runs[:profiled[0]] and runs[profiled[-1] + 1:] and all(after)  # clean runs before and after
    (profiled_session,) = [o for o in spy.options if o and o[0]]  # one profiled session, saving its graph
    assert profiled_session[1].endswith("optimized.onnx")
    assert raw["time_source"] == "cpu" and raw["profiled_run_ms"] > 0 and "unprofiled_ms" not in raw
    rows = {r["name"]: r for r in raw["rows"]}
    assert any(r["onnx_nodes"] == ["conv1", "relu1"] for r in rows.values())  # joined through the optimized graph


class FakeTrtProvider(OrtCpuRunner):
    """ort:tensorrt's per-layer logic (a provider that compiles nodes) on the CPU provider."""

    compiles_nodes = True


def test_a_compiling_provider_never_saves_the_optimized_graph(spy, tiny):
    with FakeTrtProvider("cpu") as runner:
        runner.load(Workload.from_file(tiny, batch=1, resolution=16, options={"threads": 1}))
        raw = runner.layer_times(4, onnx_layers(tiny, 1))
    profiled = [o for o in spy.options if o and o[0]]
    assert profiled == [(True, "")]  # optimized_model_filepath never set
    assert any("one compiled kernel" in n for n in raw["notes"])
    names = {r["name"]: r for r in raw["rows"]}
    assert names["fc"]["onnx_nodes"] == ["fc"] and names["fc"]["flops"] > 0  # joined by name where it can be


def test_a_compiled_subgraph_is_one_fused_row_off_the_roofline(tiny):
    info = onnx_layers(tiny, 1)
    name = "TensorrtExecutionProvider_TRTKernel_graph_main_graph_1234_0_0"
    meta = {name: ("TRTKernel_graph_main_graph_1234_0", "TensorrtExecutionProvider", 0),
            "fc": ("Gemm", "CUDAExecutionProvider", 100)}
    rows = ort_runner._named_rows(info, [name, "fc"], meta, {name: 1.0, "fc": 0.1}, {name: 1.0, "fc": 0.1},
                                  "TensorrtExecutionProvider")
    fused = rows[0]
    assert (fused["name"], fused["op_type"], fused["onnx_nodes"], fused["bytes"]) == (name, "TensorRT subgraph",
                                                                                       [], None)
    rep = report(from_raw({"rows": rows, "profiled_run_ms": 1.2, "end_to_end_ms": 1.0, "time_source": "host_launch"}),
                 model="tiny", runner="ort:tensorrt", device="cuda:0", batch=1,
                 peaks={"flops_per_s": 1e13, "bytes_per_s": 1e12})
    assert all(r["bound"] is None for r in rep.rows) and rep.memory_bound_time_fraction is None


def test_gpu_providers_mark_their_node_times_host_side():
    from hwprofile.runners._ort_gpu import OrtCudaRunner, OrtTensorrtRunner

    assert OrtCpuRunner("cpu").time_source == "cpu"
    assert OrtCudaRunner("cuda:0").time_source == "host_launch" and not OrtCudaRunner.compiles_nodes
    assert OrtTensorrtRunner("cuda:0").time_source == "host_launch" and OrtTensorrtRunner.compiles_nodes
