"""Roofline figures: every layer as a point (intensity vs achieved FLOP/s) under the device's roofs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import ConfigError, InputFileError


def _safe(text: str) -> str:
    """A file-name part: letters, digits, '.', '_' and '-' only, never a path."""
    text = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)))
    return text.strip(".-")[:80] or "x"


def _free(path: Path) -> Path:
    """``path``, or ``name-2.png``, ``name-3.png``...: an existing file is never replaced."""
    if not path.exists():
        return path
    n = 2
    while path.with_name(f"{path.stem}-{n}{path.suffix}").exists():
        n += 1
    return path.with_name(f"{path.stem}-{n}{path.suffix}")


def reports_from(path: str | Path) -> list[dict]:
    """LayerReport dicts from a ``hwprofile layers --out`` file or from a profile's ``run --layers`` records."""
    from .layers import record_report
    from .profile import Profile

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
    from .plot import _pyplot

    reports = reports_from(source)
    plt = _pyplot()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {str(out)!r}: {exc.strerror}") from None
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
        path = _free(out / name)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
