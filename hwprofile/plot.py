"""The paper's runtime figure for this device: latency vs flops and vs acts, coloured by strategy."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ._lazy import heavy
from .analysis import groups, pearson
from .atomic import TargetExists, inside, make_folder, write_bytes
from .errors import ConfigError, EnvironmentProblem
from .profile import Profile


def pyplot():
    try:
        matplotlib = heavy("matplotlib")
    except ImportError:
        raise EnvironmentProblem("plotting needs matplotlib: pip install 'hwprofile[plot]'") from None
    matplotlib.use("Agg")
    plt = heavy("matplotlib.pyplot")

    return plt


def plot_profile(profile: Profile, out_dir: str | Path, *, replace: bool = False) -> list[Path]:
    """One PNG per (device, runner, batch, precision, mode) group; returns the paths written.

    File names come from the profile's data, so they are sanitised to one component inside ``out_dir``;
    an existing file is replaced only with ``replace`` (the CLI's ``--force``).
    """

    grouped = groups(profile.records)
    if not grouped:
        raise ConfigError("the profile has no successful records to plot")
    plt = pyplot()
    out = out_folder(out_dir)
    names = [inside(out, f"{d}__{rn.replace(':', '-')}__b{b}__{p}__{m}.png") for d, rn, b, p, m in grouped]
    if len(set(names)) != len(names):
        raise ConfigError("two plot groups map to one file name after sanitising their device ids")
    existing = [p for p in names if os.path.lexists(p)]
    if existing and not replace:
        raise TargetExists(f"{str(existing[0])!r} exists; pass --force to replace the plots in {str(out)!r}")
    paths = []
    for (device, runner, batch, precision, mode), recs in grouped.items():
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
        strategies = sorted({r.strategy or "base" for r in recs})
        colors = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(strategies)}
        for ax, metric, label in ((axes[0], "flops", "flops (multiply-adds)"), (axes[1], "acts", "activations")):
            for s in strategies:
                pts = sorted((getattr(r, metric), r.median_ms) for r in recs if (r.strategy or "base") == s)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if len(pts) > 1 else "o",
                        color=colors[s], label=s)
            r = pearson(recs, metric)
            ax.set(xscale="log", yscale="log", xlabel=label,
                   title=f"{label}: r = {r:.3f}" if r is not None else label)
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_ylabel(f"median latency per batch (ms), batch {batch}")
        axes[1].legend(title="strategy", fontsize=8)
        fig.suptitle(f"{device} · {runner} · batch {batch} · {precision} · {mode}")
        fig.tight_layout()
        paths.append(write_bytes(names[len(paths)], figure_png(fig), replace=replace, what="plot"))
    return paths


def out_folder(out_dir: str | Path) -> Path:
    """``out_dir``, created if missing; a folder that cannot be made is one line (exit 2; a full disk 3)."""
    return make_folder(out_dir, "plot folder")


def figure_png(fig, dpi: int = 110) -> bytes:
    """``fig`` rendered to PNG in memory (then closed): plots reach the disk only through the atomic writer."""
    plt = pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()


def save_new_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path``, or at ``name-2.png``, ``name-3.png``... when that name is taken (by
    anything, a dangling link included): never replacing, never through a link (hwprofile.atomic)."""
    data = figure_png(fig, dpi)
    candidate, n = path, 1
    while True:
        if not os.path.lexists(candidate):
            try:
                return write_bytes(candidate, data, what="plot")
            except TargetExists:  # appeared meanwhile: take the next name
                pass
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
