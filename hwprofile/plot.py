"""The paper's runtime figure for this device: latency vs flops and vs acts, coloured by strategy."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ._lazy import extra_hint, heavy
from .analysis import groups, pearson
from .atomic import TargetExists, inside, write_bytes
from .errors import ConfigError, EnvironmentProblem
from .profile import Profile


def pyplot():
    try:
        matplotlib = heavy("matplotlib")
    except ImportError:
        raise EnvironmentProblem(f"plotting needs matplotlib: {extra_hint('plot')}") from None
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
        path = names[len(paths)]
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        paths.append(write_bytes(path, buf.getvalue(), replace=replace, what="plot"))
    return paths


def out_folder(out_dir: str | Path) -> Path:
    """``out_dir``, created if missing; a folder that cannot be made is a one-line ConfigError."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {str(out)!r}: {exc.strerror}") from None
    return out
