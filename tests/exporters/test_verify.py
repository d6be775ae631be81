"""The ONNX Runtime vs PyTorch check can fail: perturbed graphs, degenerate outputs, calibration."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

from exporters.to_onnx import prepared_model  # noqa: E402
from exporters.verify import compare, verify_onnx  # noqa: E402


def _perturbed(path, tmp_path, change):
    """A copy of the graph at ``path`` with ``change`` applied to the weight of a mid-network conv."""
    model = onnx.load(path)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    target = convs[len(convs) // 2].input[1]
    init = next(t for t in model.graph.initializer if t.name == target)
    arr = numpy_helper.to_array(init).copy()
    change(arr)
    init.CopyFrom(numpy_helper.from_array(arr, target))
    out = tmp_path / "perturbed.onnx"
    onnx.save(model, out)
    return str(out)


@pytest.mark.slow
def test_one_changed_weight_fails_fp32_verification(b0, tmp_path):
    model = prepared_model("EfficientNet-B0")
    assert verify_onnx(b0.path, model, (3, 224, 224)).passed

    def bump_one(arr):
        arr.flat[0] += 0.5  # a single weight of one conv

    bad = verify_onnx(_perturbed(b0.path, tmp_path, bump_one), model, (3, 224, 224))
    assert not bad.passed and bad.rms_err > bad.tolerance["rms_err"] and "rms_err" in bad.reason


@pytest.mark.slow
def test_a_wrong_conv_fails_fp16_verification(y200_fp16, tmp_path):
    model = prepared_model("RegNetY-200MF")
    good = verify_onnx(y200_fp16.path, model, (3, 224, 224), dtype="float16")
    assert good.passed

    def scale(arr):
        arr *= 1.5  # one conv's weights 50% off

    bad = verify_onnx(_perturbed(y200_fp16.path, tmp_path, scale), model, (3, 224, 224), dtype="float16")
    assert not bad.passed and bad.rms_err > good.rms_err * 3


def test_compare_passes_identical_and_fails_degenerate_outputs():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((3, 10))
    ok = compare(ref, ref + 1e-9, dtype="float32")
    assert ok.passed and ok.cosine > 0.999999 and ok.images == 3
    cases = {
        "constant": (np.ones((3, 10)), np.ones((3, 10))),
        "does not depend on the input": (np.tile(ref[:1], (3, 1)), np.tile(ref[:1], (3, 1))),
        "inf/nan": (ref, np.where(ref > 1, np.inf, ref)),
        "not finite": (np.full((3, 10), np.nan), ref),
        "shape": (ref, ref[:, :5]),
    }
    for needle, (r, o) in cases.items():
        res = compare(r, o, dtype="float32")
        assert not res.passed and needle in res.reason, needle


def test_compare_is_scale_free():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((4, 100))
    noisy = ref + 0.005 * rng.standard_normal((4, 100))
    for scale in (1e-6, 1.0, 1e6):  # the same relative error passes or fails whatever the output scale
        assert not compare(ref * scale, noisy * scale, dtype="float32").passed
        assert compare(ref * scale, noisy * scale, dtype="float16").passed


def test_calibration_sets_bn_statistics():
    import torch

    from exporters.bn_calibration import calibrate_bn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.1))
    assert calibrate_bn(net, (3, 8, 8)) == 1
    bn = net[1]
    assert not net.training and bn.momentum == 0.1 and bn.num_batches_tracked == 1
    assert not torch.allclose(bn.running_var, torch.ones(4)) and not torch.allclose(bn.running_mean, torch.zeros(4))
    with torch.no_grad():
        y = net(torch.randn(16, 3, 8, 8))
    assert y.std().item() == pytest.approx(1.0, abs=0.2)  # well-scaled outputs after calibration
