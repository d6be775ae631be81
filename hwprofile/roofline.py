"""The device's roofline: every record's share of the measured peaks, and roofline figures of layers.

Records: the share of peak compute each record reached and the share of peak memory bandwidth its
activations imply at the least.

The peaks are measured once per sweep (:func:`measure_peaks`, ``hwprofile.measure.peaks`` in a child
process) and stored in the profile's device entry under ``peaks``. Shares are derived when shown:

- compute share = ``2 x flops x batch x passes / latency / peak FLOP/s``: flops are multiply-adds per image
  (2 FLOP each); ``passes`` is 1 for inference and 3 for training (backward counted as two forward passes);
  the peak is the dense matmul rate at the record's precision (on a GPU, fp32 uses the TF32 rate, since
  fp32 convolutions run as TF32 by default; fp16 the fp16 rate).
- bandwidth share = ``2 x acts x batch x element bytes x passes / latency / copy bandwidth``: the byte
  model is that every activation is written once and read once at the precision's element size (4 bytes
  fp32, 2 fp16); weights, inputs and re-reads are not counted, so it is a lower bound on the traffic.
  Copy bandwidth counts bytes read plus bytes written, like the model. On a CPU the activations of small
  batches can live in cache, so the share can pass 100%.

A record sits near a roof when its share of it is at least :data:`NEAR_ROOF`.

Figures (``plot --roofline``): every layer as a point (intensity vs achieved FLOP/s) under the device's roofs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError, InputFileError
from .layers import record_report
from .lifetime import preamble
from .measure.isolation import cpu_busy_s
from .plot import out_folder, pyplot, save_new_figure
from .profile import Profile, utc_now


def _safe(text: str) -> str:
    """A file-name part: letters, digits, '.', '_' and '-' only, never a path."""
    text = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)))
    return text.strip(".-")[:80] or "x"


def reports_from(path: str | Path) -> list[dict]:
    """LayerReport dicts from a ``hwprofile layers --out`` file or from a profile's ``run --layers`` records."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{path}: not a JSON file ({exc})") from None
    if isinstance(data, dict) and "rows" in data and "runner" in data:
        return [data]
    profile = Profile.load(path)
    reports = [record_report(r, profile).to_dict() for r in profile.records if r.ok and r.layers]
    if not reports:
        raise ConfigError(f"{path}: no record has a layer breakdown (measure with hwprofile run --layers, or "
                          "save one with hwprofile layers --out)")
    return reports


def plot_roofline(source: str | Path, out_dir: str | Path) -> list[Path]:
    """One PNG per model, runner and batch; returns the paths written (never replacing a file)."""
    reports = reports_from(source)
    plt = pyplot()
    out = out_folder(out_dir)
    paths = []
    for rep in reports:
        pk = rep.get("peaks")
        if not pk:
            raise ConfigError(f"{rep['model']} on {rep['runner']}: no device peaks, so no roofline")
        pts = [r for r in rep["rows"] if r.get("kind") == "layer" and r.get("flops") and r.get("bytes")
               and r.get("time_ms", 0) > 0]
        fig, ax = plt.subplots(figsize=(7.5, 5))
        ops = sorted({r["op_type"] for r in pts})
        colors = {op: plt.get_cmap("tab10")(i % 10) for i, op in enumerate(ops)}
        for op in ops:
            mine = [r for r in pts if r["op_type"] == op]
            dw = [r for r in mine if r.get("depthwise")]
            rest = [r for r in mine if not r.get("depthwise")]
            for group, marker, suffix in ((rest, "o", ""), (dw, "^", " (depthwise)")):
                if group:
                    ax.scatter([r["intensity"] for r in group], [r["achieved_flops_per_s"] for r in group],
                               s=18, marker=marker, color=colors[op], alpha=0.8, label=f"{op}{suffix}")
        xs = [r["intensity"] for r in pts] or [pk["ridge"]]
        lo, hi = min(min(xs), pk["ridge"]) / 3, max(max(xs), pk["ridge"]) * 3
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        ax.plot(grid, [min(pk["flops_per_s"], x * pk["bytes_per_s"]) for x in grid], "k-", lw=1.2,
                label=f"roofs: {pk['bytes_per_s'] / 1e9:.3g} GB/s, {pk['flops_per_s'] / 1e9:.3g} GFLOP/s")
        ax.axvline(pk["ridge"], color="grey", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="intensity (flop/byte; 2 flops per multiply-add; bytes = "
               "inputs + weights + outputs)", ylabel="achieved FLOP/s")
        skipped = sum(1 for r in rep["rows"] if r.get("kind") == "layer") - len(pts)
        frac = rep.get("memory_bound_time_fraction")
        ax.set_title(f"{rep['model']} · {rep['runner']} · batch {rep['batch']}\n"
                     f"{len(pts)} layers with flops ({skipped} without: not on log axes); memory-bound share "
                     f"of time {'-' if frac is None else f'{frac:.0%}'}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        name = "__".join(_safe(x) for x in ("roofline", rep["model"], rep["runner"], f"b{rep['batch']}")) + ".png"
        paths.append(save_new_figure(fig, out / name))  # the atomic writer; a taken name gets -2, -3...
    return paths


# ------------------------------------------------------------------------------ records on the roofline
NEAR_ROOF = 0.5
ELEMENT_BYTES = {"fp32": 4, "fp16": 2}
PASSES = {"infer": 1, "train": 3}
PEAKS_SECONDS = 0.5
BYTE_MODEL = ("every activation written once and read once at the precision's element size (fp32 4 B, fp16 2 B); "
              "weights not counted; training x3")


def measure_peaks(device: str, seconds: float = PEAKS_SECONDS, timeout_s: float = 600.0) -> dict | None:
    """``hwprofile.measure.peaks.peaks(device)`` in a child process (torch stays out of the sweep's own
    process), with the other load on the cores while it ran; None (and a reason) when it fails."""
    code = (preamble(os.getpid()) + "import json, sys\nfrom hwprofile.measure.peaks import peaks\n"
            "print(json.dumps(peaks(sys.argv[1], seconds=float(sys.argv[2]))))")  # dies with this process
    busy0 = cpu_busy_s()
    try:
        done = subprocess.run([sys.executable, "-c", code, device, str(seconds)], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"peaks could not be measured: {exc}"}
    if done.returncode != 0 or not done.stdout.strip():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:240]
        return {"error": f"peaks could not be measured: {tail}"}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    busy1 = cpu_busy_s()
    out["measured_utc"] = utc_now()
    if busy0 is not None and busy1 is not None:
        out["busy_cores_while_measuring"] = round(busy1 - busy0, 3)  # includes the peaks child's own threads
    return out


def compute_peak(peaks: dict | None, precision: str) -> tuple[float | None, str | None]:
    """(FLOP/s, which peak) for ``precision``; (None, None) when the peaks do not hold one."""
    if not peaks:
        return None, None
    gpu = str(peaks.get("device", "")).startswith("cuda")
    order = {"fp32": ("matmul_tf32", "matmul_fp32") if gpu else ("matmul_fp32",), "fp16": ("matmul_fp16",)}
    for key in order.get(precision, ()):
        value = (peaks.get(key) or {}).get("flops_per_s")
        if value:
            return float(value), key
    return None, None


def bandwidth_peak(peaks: dict | None) -> float | None:
    """Copy bandwidth in bytes/s (read + written)."""
    value = ((peaks or {}).get("copy") or {}).get("gb_per_s")
    return float(value) * 1e9 if value else None


def shares(record, peaks: dict | None) -> dict:
    """{"compute_share", "bandwidth_share", "compute_peak"} of one record (None where not computable)."""
    out = {"compute_share": None, "bandwidth_share": None, "compute_peak": None}
    ms = record.median_ms if record.ok else None
    if not ms or ms <= 0:
        return out
    seconds, passes = ms / 1e3, PASSES.get(record.mode, 1)
    flops_s, key = compute_peak(peaks, record.precision)
    if flops_s and record.flops:
        out["compute_share"] = 2.0 * record.flops * record.batch * passes / seconds / flops_s
        out["compute_peak"] = key
    bw = bandwidth_peak(peaks)
    elem = ELEMENT_BYTES.get(record.precision)
    if bw and elem and record.acts:
        out["bandwidth_share"] = 2.0 * record.acts * record.batch * elem * passes / seconds / bw
    return out


def roof(s: dict) -> str | None:
    """Which roof a record sits near: "compute", "memory", "both" or None (below both)."""
    near = [name for name, key in (("compute", "compute_share"), ("memory", "bandwidth_share"))
            if s.get(key) is not None and s[key] >= NEAR_ROOF]
    return None if not near else near[0] if len(near) == 1 else "both"


def peaks_of(profile, device_id: str) -> dict | None:
    peaks = profile.device(device_id).peaks
    return peaks if isinstance(peaks, dict) and "error" not in peaks else None


def summary_lines(profile) -> list[str]:
    """Which records sit near which roof (for the end of ``hwprofile run``)."""
    ok = [r for r in profile.records if r.ok and r.median_ms]
    if not ok:
        return []
    if not any(peaks_of(profile, r.device_id) for r in ok):
        return ["roofline: no device peaks in this profile"]
    near: dict[str, list[str]] = {"compute": [], "memory": [], "both": []}
    top_c = top_b = 0.0
    for r in ok:
        s = shares(r, peaks_of(profile, r.device_id))
        top_c = max(top_c, s["compute_share"] or 0.0)
        top_b = max(top_b, s["bandwidth_share"] or 0.0)
        which = roof(s)
        if which:
            near[which].append(f"{r.label} b{r.batch} {r.runner}")
    label = {"compute": "near the compute roof", "memory": "near the memory roof", "both": "near both roofs"}
    parts = [f"{len(v)} {label[k]} ({', '.join(v[:4])}"
             f"{', ...' if len(v) > 4 else ''})" for k, v in near.items() if v]
    rest = len(ok) - sum(len(v) for v in near.values())
    head = f"roofline (near = at least {NEAR_ROOF:.0%} of a peak): "
    body = "; ".join(parts + [f"{rest} below both roofs"]) if parts else f"all {len(ok)} records below both roofs"
    return [head + body + f" (highest: {top_c:.0%} of peak compute, {top_b:.0%} of copy bandwidth)"]
