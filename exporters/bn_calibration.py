"""BatchNorm calibration of randomly initialised networks, so exported outputs are well-scaled.

A fresh network normalises with running mean 0 and variance 1, which makes activations
vanish or explode with depth. Calibrating sets each BatchNorm's running statistics to the
cumulative average of its batch statistics over a few random batches (train-mode forward
under ``no_grad`` with ``momentum=None``); the model is left in eval mode.
"""

from __future__ import annotations

from typing import Any

from hwprofile._lazy import heavy


def calibrate_bn(model: Any, input_shape: tuple[int, ...], *, batches: int = 1, batch_size: int = 2,
                 seed: int = 0) -> int:
    """Calibrate every BatchNorm of ``model`` on random (C, H, W) inputs; returns how many."""
    torch = heavy("torch")
    nn = heavy("torch.nn")

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    if not bns:
        return 0
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    gen = torch.Generator().manual_seed(seed)
    model.train()
    try:
        with torch.no_grad():
            for _ in range(batches):
                model(torch.randn(batch_size, *input_shape, generator=gen))
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()
    return len(bns)
