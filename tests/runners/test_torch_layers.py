"""torch per-layer times: forward hooks on every module, counts as the spec counts them."""

import pytest

torch = pytest.importorskip("torch")

from hwprofile.profile import Workload  # noqa: E402
from hwprofile.runners._torch import TorchCpuRunner  # noqa: E402
from hwprofile.zoo import complexity, get_spec  # noqa: E402


def test_module_counts_equal_the_analytic_counts():
    spec = get_spec("EfficientNet-B0")
    with TorchCpuRunner("cpu") as runner:
        runner.load(Workload.from_spec(spec, batch=2, options={"threads": 1}))
        raw = runner.layer_times(4)
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in runner.model.modules())  # removed
    rows = raw["rows"]
    convs = [r for r in rows if r["op_type"] == "Conv2d"]
    assert len(convs) == 81 and sum(r["depthwise"] for r in convs) == 16
    assert sum(r["flops"] for r in rows) == 2 * complexity(spec).flops  # whole batch of 2
    assert all(r["bytes"] > 0 for r in convs)
    kinds = {r["op_type"] for r in rows}
    assert {"SE ops", "MBConv ops", "overhead"} <= kinds  # the SE multiply and residual adds have rows too
    assert raw["iterations"] == 4 and raw["profiled_run_ms"] > 0 and raw["time_source"] == "cpu"
    assert "unprofiled_ms" not in raw  # no unprofiled runs between the profiled ones: the child times them apart
    assert sum(r["time_ms"] for r in rows) <= raw["profiled_run_ms"] * (1 + 1e-9)  # rows lie inside the runs


def test_compiled_models_are_not_timed_by_layer():
    from hwprofile.runners import Unsupported

    with TorchCpuRunner("cpu") as runner:
        runner.load(Workload.from_spec(get_spec("EfficientNet-B0"), batch=1, mode="train"))
        with pytest.raises(Unsupported, match="eager inference"):
            runner.layer_times(4)
