"""Does an exported graph reproduce PyTorch? ONNX Runtime CPU against the fp32 module.

The comparison is scale-free, so it can fail for any model: ``rel_err`` (largest absolute
difference) and ``rms_err`` (root-mean-square difference) are divided by the reference
output's standard deviation, and ``cosine`` compares the mean-centred outputs. Before comparing, the reference must be non-trivial:
finite, not constant, and different for different images.
"""

from __future__ import annotations

from typing import Any

from .artifacts import Verification

#: Bounds per graph precision. Randomly initialised deep nets amplify rounding differences
#: (ONNX Runtime's fused kernels vs PyTorch's): ResNet-152 in fp32 reaches rms_err 4e-4. fp16
#: graphs round weights and activations to 11 significant bits, so they get looser bounds. A
#: single weight of a mid-network conv changed by +0.05 still fails the fp32 bounds
#: (rms_err ~4e-3 on EfficientNet-B0); tests/exporters/test_verify.py checks such failures.
TOLERANCES = {
    "float32": {"rel_err": 1e-2, "rms_err": 2e-3, "cosine": 0.99999},
    "float16": {"rel_err": 1.0, "rms_err": 0.1, "cosine": 0.995},
}


def reference_output(model: Any, x: Any) -> Any:
    """The fp32 PyTorch output for ``x`` as float64 numpy."""
    import torch

    with torch.no_grad():
        return model(x).double().numpy()


def ort_output(path: str, input_name: str, x: Any, dtype: str) -> Any:
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = x.numpy().astype(np.float16 if dtype == "float16" else np.float32)
    return sess.run(None, {input_name: feed})[0].astype(np.float64)


def compare(ref: Any, out: Any, *, dtype: str, reference: str = "torch fp32") -> Verification:
    """Scale-free comparison of ``out`` with ``ref`` (float64 arrays, images along axis 0)."""
    import numpy as np

    tol = TOLERANCES[dtype]
    std = float(ref.std()) if ref.size else 0.0

    def result(passed: bool, rel: float, rms: float, cos: float, reason: str = "") -> Verification:
        return Verification(passed, rel, rms, cos, dict(tol), int(ref.shape[0]) if ref.ndim else 0, std,
                            reference, reason)

    bad = _degenerate(ref, out, std)
    if bad:
        return result(False, float("inf"), float("inf"), 0.0, bad)
    diff = out - ref
    rel, rms = float(np.abs(diff).max() / std), float(np.sqrt((diff ** 2).mean()) / std)
    rc, oc = (ref - ref.mean()).ravel(), (out - out.mean()).ravel()
    cos = float(rc @ oc / (np.linalg.norm(rc) * np.linalg.norm(oc) or 1.0))
    fails = [f"{name} {value:.3g} > {tol[name]:g}" for name, value in (("rel_err", rel), ("rms_err", rms))
             if value > tol[name]]
    if cos < tol["cosine"]:
        fails.append(f"cosine {cos:.6f} < {tol['cosine']:g}")
    return result(not fails, rel, rms, cos, "; ".join(fails))


def _degenerate(ref: Any, out: Any, std: float) -> str:
    """Why the comparison would prove nothing (or the output is broken); empty when fine."""
    import numpy as np

    if ref.shape != out.shape:
        return f"output shape {out.shape} != reference {ref.shape}"
    if not np.isfinite(ref).all():
        return "the PyTorch reference output is not finite"
    if not np.isfinite(out).all():
        return "ONNX Runtime output has inf/nan (overflow?)"
    if std <= 1e-12 * max(1.0, float(np.abs(ref).max())):
        return "the reference output is constant (degenerate network)"
    if ref.shape[0] > 1 and float(np.ptp(ref, axis=0).max()) <= 1e-9 * std:
        return "the reference output does not depend on the input image"
    return ""


def verify_onnx(path: str, model: Any, input_shape: tuple[int, ...], *, input_name: str = "input",
                dtype: str = "float32", batch: int = 3, seed: int = 1) -> Verification:
    """Run ``path`` on ONNX Runtime CPU and compare with fp32 ``model`` on random images.

    ``batch`` is the graph's batch size; a batch of one runs twice, so that the check that
    outputs differ between images still applies.
    """
    import numpy as np
    import torch

    gen = torch.Generator().manual_seed(seed)
    refs, outs = [], []
    for _ in range(2 if batch == 1 else 1):
        x = torch.randn(batch, *input_shape, generator=gen)
        refs.append(reference_output(model, x))
        outs.append(ort_output(path, input_name, x, dtype))
    ref, out = np.concatenate(refs), np.concatenate(outs)
    return compare(ref, out, dtype=dtype)
