"""The device's roofline: every record's share of the measured peaks, and roofline figures of layers.

Records: the share of peak compute each record reached and the share of peak memory bandwidth its
activations imply at the least.

The peaks are measured once per sweep (:func:`hwprofile.measure.measure_peaks`, ``hwprofile.measure._peaks``
in a child process) and stored in the profile's device entry under ``peaks``. Shares are derived when shown:

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

import math
import re
from pathlib import Path

from hwprofile.analysis._layers import file_report, record_report, select_peaks
from hwprofile.analysis._plot import out_folder, pyplot, save_new_figure
from hwprofile.errors import ConfigError
from hwprofile.profile import SCHEMA, Profile, layers_file_from_data, read_json


def _safe(text: str) -> str:
    """A file-name part: letters, digits, '.', '_' and '-' only, never a path."""
    text = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)))
    return text.strip(".-")[:80] or "x"


def reports_from(path: str | Path) -> list[dict]:
    """LayerReport dicts from a ``hwprofile layers --out`` file or from a profile's ``run --layers`` records, read
    through the guarded, typed parsers (a damaged file is one SchemaError line)."""
    data = read_json(path, "roofline input")
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        profile = Profile.from_dict(data, origin=f"profile {str(path)!r}")
        reports = [rep.to_dict() for rep in (record_report(r, profile) for r in profile.records if r.ok)
                   if rep is not None]
        if not reports:
            raise ConfigError(f"{path}: no record has a layer breakdown (measure with hwprofile run --layers, or "
                              "save one with hwprofile layers --out)")
        return reports
    return [file_report(layers_file_from_data(data, origin=f"layers file {str(path)!r}")).to_dict()]


def plain_text(text: object) -> str:
    """``text`` shown as it is by matplotlib: a ``$`` would start mathtext (a model named ``$x^{$`` breaks it)."""
    return str(text).replace("$", r"\$")


def _points(rep: dict) -> list[dict]:
    """The layers that can sit on log axes: with flops, bytes and a positive time, all finite."""
    return [r for r in rep["rows"] if r.get("kind") == "layer" and r.get("flops") and r.get("bytes")
            and (r.get("time_ms") or 0) > 0 and r.get("intensity") and r.get("achieved_flops_per_s")
            and math.isfinite(r["intensity"]) and math.isfinite(r["achieved_flops_per_s"])]


def plot_roofline(source: str | Path, out_dir: str | Path) -> list[Path]:
    """One PNG per model, runner and batch; returns the paths written (never replacing a file)."""
    reports = reports_from(source)
    plt = pyplot()
    out = out_folder(out_dir)
    paths = []
    for rep in reports:
        pk = rep.get("peaks")
        if not pk:
            why = ("its layer times are host-side launch times, not device time"
                   if rep.get("time_source") == "host_launch" else "no device peaks")
            raise ConfigError(f"{rep['model']} on {rep['runner']}: {why}, so no roofline")
        if rep.get("time_source") == "host_launch":
            raise ConfigError(f"{rep['model']} on {rep['runner']}: its layer times are host-side launch times, not "
                              "device time, so no roofline (time layers on the GPU with the trt runner)")
        pts = _points(rep)
        fig, ax = plt.subplots(figsize=(7.5, 5))
        ops = sorted({str(r["op_type"]) for r in pts})
        colors = {op: plt.get_cmap("tab10")(i % 10) for i, op in enumerate(ops)}
        for op in ops:
            mine = [r for r in pts if str(r["op_type"]) == op]
            dw = [r for r in mine if r.get("depthwise")]
            rest = [r for r in mine if not r.get("depthwise")]
            for group, marker, suffix in ((rest, "o", ""), (dw, "^", " (depthwise)")):
                if group:
                    ax.scatter([r["intensity"] for r in group], [r["achieved_flops_per_s"] for r in group],
                               s=18, marker=marker, color=colors[op], alpha=0.8, label=plain_text(f"{op}{suffix}"))
        xs = [r["intensity"] for r in pts] or [pk["ridge"]]
        lo, hi = min(min(xs), pk["ridge"]) / 3, max(max(xs), pk["ridge"]) * 3
        grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        disturbed = " (measured under load: too low)" if pk.get("disturbed") else ""
        ax.plot(grid, [min(pk["flops_per_s"], x * pk["bytes_per_s"]) for x in grid], "k-", lw=1.2,
                label=f"roofs: {pk['bytes_per_s'] / 1e9:.3g} GB/s, {pk['flops_per_s'] / 1e9:.3g} GFLOP/s{disturbed}")
        ax.axvline(pk["ridge"], color="grey", ls=":", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="intensity (flop/byte; 2 flops per multiply-add; bytes = "
               "inputs + weights + outputs)", ylabel="achieved FLOP/s")
        skipped = sum(1 for r in rep["rows"] if r.get("kind") == "layer") - len(pts)
        frac = rep.get("memory_bound_time_fraction")
        ax.set_title(plain_text(f"{rep['model']} · {rep['runner']} · batch {rep['batch']}\n"
                                f"{len(pts)} layers with flops ({skipped} without: not on log axes); memory-bound "
                                f"share of time {'-' if frac is None else f'{frac:.0%}'}"), fontsize=9)
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
BYTE_MODEL = ("every activation written once and read once at the precision's element size (fp32 4 B, fp16 2 B); "
              "weights not counted; training x3")


def _best_rate(entry: object, key: str) -> float | None:
    """The best rate of one peak test (a peak is an upper bound; other processes only lower it), else its
    median; None unless positive and finite."""
    if not isinstance(entry, dict):
        return None
    for name in (f"{key}_best", key):
        value = entry.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return float(value)
    return None


def compute_peak(peaks: dict | None, precision: str) -> tuple[float | None, str | None]:
    """(FLOP/s, which peak) for ``precision``; (None, None) when the peaks do not hold one."""
    if not isinstance(peaks, dict):
        return None, None
    gpu = str(peaks.get("device", "")).startswith("cuda")
    order = {"fp32": ("matmul_tf32", "matmul_fp32") if gpu else ("matmul_fp32",), "fp16": ("matmul_fp16",)}
    for key in order.get(precision, ()):
        value = _best_rate(peaks.get(key), "flops_per_s")
        if value:
            return value, key
    return None, None


def bandwidth_peak(peaks: dict | None) -> float | None:
    """Copy bandwidth in bytes/s (read + written)."""
    value = _best_rate(peaks.get("copy"), "gb_per_s") if isinstance(peaks, dict) else None
    return value * 1e9 if value else None


def shares(record, peaks: dict | None) -> dict:
    """{"compute_share", "bandwidth_share", "compute_peak", "above_peak", "peaks_disturbed"} of one record (None
    where not computable). ``above_peak`` names the shares above 1: the record beat a measured peak, so the
    share is no share of the hardware (the peak was measured too low, or the data stayed in cache)."""
    compute: float | None = None
    bandwidth: float | None = None
    peak_key: str | None = None
    ms = record.median_ms if record.ok else None
    if ms and ms > 0:
        seconds, passes = ms / 1e3, PASSES.get(record.mode, 1)
        flops_s, key = compute_peak(peaks, record.precision)
        if flops_s and record.flops:
            compute, peak_key = 2.0 * record.flops * record.batch * passes / seconds / flops_s, key
        bw = bandwidth_peak(peaks)
        elem = ELEMENT_BYTES.get(record.precision)
        if bw and elem and record.acts:
            bandwidth = 2.0 * record.acts * record.batch * elem * passes / seconds / bw
    above = [name for name, share in (("compute_share", compute), ("bandwidth_share", bandwidth))
             if share is not None and share > 1.0]
    return {"compute_share": compute, "bandwidth_share": bandwidth, "compute_peak": peak_key, "above_peak": above,
            "peaks_disturbed": bool(isinstance(peaks, dict) and peaks.get("disturbed"))}


def roof(s: dict) -> str | None:
    """Which roof a record sits near: "compute", "memory", "both" or None (below both)."""
    near = [name for name, key in (("compute", "compute_share"), ("memory", "bandwidth_share"))
            if s.get(key) is not None and s[key] >= NEAR_ROOF]
    return None if not near else near[0] if len(near) == 1 else "both"


def peaks_of(profile, device_id: str, threads: int | None = None) -> dict | None:
    """The device's measured peaks that apply at ``threads`` CPU threads (None: whatever was measured)."""
    return select_peaks(profile.device(device_id).peaks, threads)


def record_peaks(profile, record) -> dict | None:
    """The device's peaks measured at ``record``'s thread count, or None."""
    return peaks_of(profile, record.device_id, record.settings.threads)


def share_text(value: float | None) -> str:
    """A share for people: ``-``, ``42%``, or, above 1 (no share of the hardware), ``107%!``."""
    if value is None:
        return "-"
    return f"{value:.0%}!" if value > 1.0 else f"{value:.0%}"


def summary_lines(profile) -> list[str]:
    """Which records sit near which roof (for the end of ``hwprofile run``); records above a measured peak
    are counted apart and flagged, never as near or below."""
    ok = [r for r in profile.records if r.ok and r.median_ms]
    if not ok:
        return []
    with_peaks = [(r, record_peaks(profile, r)) for r in ok]
    if not any(pk for _, pk in with_peaks):
        measured = sorted({str(pk.get("threads")) for d in profile.devices.values()
                           if isinstance(pk := d.peaks, dict) and "error" not in pk and pk.get("threads")})
        if measured:
            return [f"roofline: the device peaks were measured at {'/'.join(measured)} threads, not at these records' "
                    "thread count: no shares (a new sweep measures them at its thread count)"]
        return ["roofline: no device peaks in this profile"]
    groups: dict[str, list[str]] = {"compute": [], "memory": [], "both": [], "above": []}
    top_c = top_b = 0.0
    disturbed = False
    unmatched = sum(1 for _, pk in with_peaks if not pk)
    for r, pk in with_peaks:
        if not pk:
            continue
        s = shares(r, pk)
        disturbed |= s["peaks_disturbed"]
        top_c = max(top_c, s["compute_share"] or 0.0)
        top_b = max(top_b, s["bandwidth_share"] or 0.0)
        which = "above" if s["above_peak"] else roof(s)
        if which:
            groups[which].append(f"{r.label} b{r.batch} {r.runner}")
    label = {"compute": "near the compute roof", "memory": "near the memory roof", "both": "near both roofs",
             "above": "above a measured peak!"}
    parts = [f"{len(v)} {label[k]} ({', '.join(v[:4])}{', ...' if len(v) > 4 else ''})"
             for k, v in groups.items() if v]
    rest = len(ok) - unmatched - sum(len(v) for v in groups.values())
    head = f"roofline (near = at least {NEAR_ROOF:.0%} of a peak): "
    body = "; ".join(parts + ([f"{rest} below both roofs"] if rest else [])) if parts \
        else f"all {rest} records below both roofs"
    if unmatched:
        body += f"; {unmatched} without peaks at their thread count"
    tail = f"; highest: {share_text(top_c)} of peak compute, {share_text(top_b)} of copy bandwidth"
    if groups["above"] or top_c > 1 or top_b > 1:
        tail += "; !: above a measured peak, so no share of the hardware (the peak was measured too low, or the " \
                "data stayed in cache)"
    if disturbed:
        tail += "; the peaks were measured while other processes kept the CPU busy: shares are too high"
    return [head + body + tail]
