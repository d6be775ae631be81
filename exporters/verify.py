"""Does an exported graph reproduce PyTorch? ONNX Runtime CPU against the fp32 module.

The comparison is scale-free, so it can fail for any model: ``rel_err`` (largest absolute
difference) and ``rms_err`` (root-mean-square difference) are divided by the reference
output's standard deviation, and ``cosine`` compares the mean-centred outputs. Before comparing,
the reference must be non-trivial: finite, not constant, and different for different images.

fp32 graphs get fixed bounds. An fp16 graph cannot match fp32 better than fp16 arithmetic
allows, and randomly initialised deep nets amplify rounding (ResNet-152: rms_err 0.17 for
PyTorch's own fp16 forward), so its bounds come from a noise floor measured on the same
images: the fp32 module with fp16-rounded weights and layer outputs (which tracks PyTorch's
fp16 forward closely: 0.164 vs 0.165 on ResNet-152).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from exporters.artifacts import Verification
from hwprofile._lazy import heavy

#: fp32 bounds. Deep random nets amplify rounding differences between ONNX Runtime's fused
#: kernels and PyTorch's (ResNet-152: rms_err 4e-4), yet one weight of a mid-network conv of
#: EfficientNet-B0 changed by +0.05 gives rms_err 4e-3 and fails. fp16: the slack added to
#: twice the noise floor (and the bounds used when no floor is known).
TOLERANCES = {
    "float32": {"rel_err": 1e-2, "rms_err": 2e-3, "cosine": 0.99999},
    "float16": {"rel_err": 0.05, "rms_err": 0.01, "cosine": 0.9999},
}


def fp16_tolerance(floor: dict) -> dict:
    """fp16 bounds: twice the error fp16 rounding alone causes, plus the fixed slack."""
    base = TOLERANCES["float16"]
    return {"rel_err": base["rel_err"] + 2 * floor["rel_err"], "rms_err": base["rms_err"] + 2 * floor["rms_err"],
            "cosine": min(base["cosine"], 1 - 4 * (1 - floor["cosine"]))}


def reference_output(model: Any, x: Any) -> Any:
    """The fp32 PyTorch output for ``x`` as float64 numpy."""
    torch = heavy("torch")

    with torch.no_grad():
        return model(x).double().numpy()


def fp16_emulated_output(model: Any, x: Any) -> Any:
    """``model`` in fp32 arithmetic with its weights, input and every layer output rounded to fp16."""
    torch = heavy("torch")

    emu = copy.deepcopy(model).half().float()

    def round_output(_module: Any, _inputs: Any, out: Any) -> Any:
        return out.half().float() if isinstance(out, torch.Tensor) else out

    for m in emu.modules():
        if not list(m.children()):
            m.register_forward_hook(round_output)
    return reference_output(emu, x.half().float())


def ort_output(path: str, input_name: str, x: Any, dtype: str) -> Any:
    ort = heavy("onnxruntime")

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = x.numpy().astype(np.float16 if dtype == "float16" else np.float32)
    return sess.run(None, {input_name: feed})[0].astype(np.float64)


def metrics(ref: Any, out: Any) -> dict:
    """rel_err, rms_err (relative to the reference's std) and centred cosine of ``out`` vs ``ref``."""
    std = float(ref.std())
    diff = out - ref
    rc, oc = (ref - ref.mean()).ravel(), (out - out.mean()).ravel()
    return {"rel_err": float(np.abs(diff).max() / std), "rms_err": float(np.sqrt((diff ** 2).mean()) / std),
            "cosine": float(rc @ oc / (np.linalg.norm(rc) * np.linalg.norm(oc) or 1.0))}


def compare(ref: Any, out: Any, *, dtype: str, tolerance: dict | None = None, noise_floor: dict | None = None,
            reference: str = "torch fp32") -> Verification:
    """Scale-free comparison of ``out`` with ``ref`` (float64 arrays, images along axis 0)."""
    tol = dict(tolerance or TOLERANCES[dtype])
    std = float(ref.std()) if ref.size else 0.0

    def result(passed: bool, m: dict, reason: str = "") -> Verification:
        return Verification(passed, m["rel_err"], m["rms_err"], m["cosine"], tol,
                            int(ref.shape[0]) if ref.ndim else 0, std, reference, reason, noise_floor)

    bad = _degenerate(ref, out, std)
    if bad:
        return result(False, {"rel_err": float("inf"), "rms_err": float("inf"), "cosine": 0.0}, bad)
    m = metrics(ref, out)
    fails = [f"{k} {m[k]:.3g} > {tol[k]:.3g}" for k in ("rel_err", "rms_err") if m[k] > tol[k]]
    if m["cosine"] < tol["cosine"]:
        fails.append(f"cosine {m['cosine']:.6f} < {tol['cosine']:.6f}")
    return result(not fails, m, "; ".join(fails))


def _degenerate(ref: Any, out: Any, std: float) -> str:
    """Why the comparison would prove nothing (or the output is broken); empty when fine."""
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
    torch = heavy("torch")

    gen = torch.Generator().manual_seed(seed)
    refs, outs, emus = [], [], []
    for _ in range(2 if batch == 1 else 1):
        x = torch.randn(batch, *input_shape, generator=gen)
        refs.append(reference_output(model, x))
        outs.append(ort_output(path, input_name, x, dtype))
        if dtype == "float16":
            emus.append(fp16_emulated_output(model, x))
    ref, out = np.concatenate(refs), np.concatenate(outs)
    if dtype != "float16" or _degenerate(ref, ref, float(ref.std())):
        return compare(ref, out, dtype=dtype)
    floor = metrics(ref, np.concatenate(emus))
    return compare(ref, out, dtype=dtype, tolerance=fp16_tolerance(floor), noise_floor=floor)
