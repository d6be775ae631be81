import pytest

torch = pytest.importorskip("torch")

from hwprofile import build_model  # noqa: E402
from hwprofile.zoo import (  # noqa: E402
    complexity,
    get_spec,
    model_names,
    scale,
)


@pytest.mark.slow
@torch.no_grad()
def test_every_zoo_model_builds_runs_and_matches_analytic_params():
    """Every block's channels fit the next at any input size (global pooling before the head), so a 32x32 image (the
    smallest that every stride-32 network reduces to 1x1) runs the whole graph at 2% of the training resolution's
    flops; tests/test_onnx_complexity.py counts models at their training resolution."""
    for name in model_names():
        spec = get_spec(name)
        model = build_model(spec).eval()
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert n == complexity(spec).params, name
        out = model(torch.zeros(1, 3, 32, 32))
        assert tuple(out.shape) == (1, 1000), name


@torch.no_grad()
@pytest.mark.parametrize("model,strategy,s", [
    ("EfficientNet-B0", "dWr", 4), ("RegNetY-400MF", "wg", 2), ("ResNeXt-50", "d", 0.5), ("RegNetZ-500MF", "dwr", 2)])
def test_scaled_models_build_with_analytic_params(model, strategy, s):
    spec = scale(get_spec(model), strategy, s)
    net = build_model(spec).eval()
    assert sum(p.numel() for p in net.parameters()) == complexity(spec).params
    assert tuple(net(torch.zeros(1, 3, 64, 64)).shape) == (1, 1000)


def test_forward_hook_acts_match_analytic_count():
    """Count conv/linear/maxpool outputs with hooks: the definition of acts."""
    spec = get_spec("RegNetY-200MF")
    net = build_model(spec).eval()
    total = 0

    def hook(_m, _i, out):
        nonlocal total
        total += out[0].numel()

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.MaxPool2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.zeros(1, 3, 224, 224))
    assert total == complexity(spec).acts
