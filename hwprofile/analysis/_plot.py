"""The paper's runtime figure for this device: latency vs flops and vs acts, coloured by strategy, and the
equal-flops contrast (each strategy's latency relative to ``w`` at the same s against its acts ratio).

Points follow the one quality policy (:func:`hwprofile.analysis.usable`): clean and noisy records are drawn by
strategy; disturbed ones are drawn apart as grey crosses (:data:`LEFT_OUT_MARKER`), named in the legend and
counted in the title, and left out of every fit and r."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwprofile._lazy import extra_hint, heavy
from hwprofile.analysis._contrast import REFERENCE, equal_flops
from hwprofile.analysis._follows import Excluded, GroupKey, by_group, left_out_text, pearson
from hwprofile.atomic import TargetExists, inside, make_folder, write_bytes
from hwprofile.errors import ConfigError, EnvironmentProblem
from hwprofile.profile import Profile, Record

#: how a left-out (disturbed) point is drawn: a grey cross, apart from every strategy's colour
LEFT_OUT_MARKER = "x"
LEFT_OUT_COLOR = "0.45"


def pyplot():
    try:
        matplotlib = heavy("matplotlib")
    except ImportError:
        raise EnvironmentProblem(f"plotting needs matplotlib: {extra_hint('plot')}") from None
    matplotlib.use("Agg")
    plt = heavy("matplotlib.pyplot")

    return plt


@dataclass(frozen=True)
class PlotGroup:
    """One figure's points: the records every reader uses, and those left out that still have a latency and
    counts (disturbed ones), drawn apart and marked (hwprofile.analysis.usable: the one quality policy)."""

    used: tuple[Record, ...]
    left_out: tuple[Excluded, ...]


def plot_groups(profile: Profile) -> dict[GroupKey, PlotGroup]:
    """Per (device, runner, batch, precision, mode) group with anything to draw: its used and left-out points."""
    out = {}
    for key, u in by_group(profile.records).items():
        drawn = tuple(e for e in u.excluded if e.record.median_ms and e.record.flops and e.record.acts)
        if u.used or drawn:
            out[key] = PlotGroup(tuple(x.record for x in u.used), drawn)
    return out


def plot_profile(profile: Profile, out_dir: str | Path, *, replace: bool = False) -> list[Path]:
    """One PNG per (device, runner, batch, precision, mode) group; returns the paths written.

    The points are the usable records (clean and noisy) by strategy; records left out (disturbed) are drawn as
    grey crosses, named in the legend and counted in the title, and no fit or r uses them. File names come
    from the profile's data, so they are sanitised to one component inside ``out_dir``; an existing file is
    replaced only with ``replace`` (the CLI's ``--force``).
    """

    grouped = plot_groups(profile)
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
    paths: list[Path] = []
    contrasts: dict = {}
    for c in equal_flops(profile.records):
        contrasts.setdefault(GroupKey(c.device_id, c.runner, c.batch, c.precision, c.mode), []).append(c)
    for key, group in grouped.items():
        fig = figure(plt, key, group, contrasts.get(key, []))
        paths.append(write_bytes(names[len(paths)], figure_png(fig), replace=replace, what="plot"))
    return paths


def figure(plt, key: GroupKey, group: PlotGroup, contrasts) -> Any:
    """The figure of one group: latency against flops and against acts, and the equal-flops contrast."""
    device, runner, batch, precision, mode = key
    recs = list(group.used)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1, 0.9]})
    axes[1].sharey(axes[0])
    strategies = sorted({r.strategy or "base" for r in recs})
    colors = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(strategies)}
    for ax, metric, label in ((axes[0], "flops", "flops (multiply-adds)"), (axes[1], "acts", "activations")):
        for s in strategies:
            pts = sorted((getattr(r, metric), r.median_ms) for r in recs if (r.strategy or "base") == s)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-" if len(pts) > 1 else "o",
                    color=colors[s], label=s)
        if group.left_out:
            ax.plot([getattr(e.record, metric) for e in group.left_out], [e.record.median_ms for e in group.left_out],
                    LEFT_OUT_MARKER, color=LEFT_OUT_COLOR, markersize=8,
                    label=f"left out: {left_out_text(group.left_out)}")
        r = pearson(recs, metric)
        ax.set(xscale="log", yscale="log", xlabel=label,
               title=f"{label}: r = {r:.3f}" if r is not None else label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"median latency per batch (ms), batch {batch}")
    axes[1].legend(title="strategy", fontsize=8)
    _contrast_panel(axes[2], contrasts, colors)
    left = f" · {len(group.left_out)} left out (x)" if group.left_out else ""
    fig.suptitle(f"{device} · {runner} · batch {batch} · {precision} · {mode}{left}")
    fig.tight_layout()
    return fig


def _contrast_panel(ax, contrasts, colors) -> None:
    """Latency relative to w (with its interval) against acts relative to w, at equal flops."""
    ax.set(xscale="log", yscale="log", xlabel=f"acts / acts of {REFERENCE} (same s, about equal flops)",
           ylabel=f"latency / latency of {REFERENCE}", title="at equal flops")
    if not contrasts:
        ax.text(0.5, 0.5, f"no strategy measured beside {REFERENCE}", ha="center", va="center", transform=ax.transAxes)
        return
    xs = [c.acts_ratio for c in contrasts]
    lo, hi = min(xs + [1.0]) / 1.2, max(xs + [1.0]) * 1.2
    ax.plot([lo, hi], [lo, hi], "--", color="0.5", lw=1, label="∝ acts")
    ax.plot([lo, hi], [1, 1], ":", color="0.5", lw=1, label="∝ flops (ratio ~1)")
    for c in contrasts:
        lat = c.latency_ratio
        ax.errorbar([c.acts_ratio], [lat.value], yerr=[[lat.value - lat.low], [lat.high - lat.value]], fmt="o",
                    color=colors.get(c.strategy, "k"), capsize=3)
        ax.annotate(f"{c.strategy} x{c.scale:g}", (c.acts_ratio, lat.value), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


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
