"""The paper's runtime figure for this device: latency vs flops and vs acts, coloured by strategy."""

from __future__ import annotations

from pathlib import Path

from .analysis import groups, pearson
from .errors import ConfigError, EnvironmentProblem
from .profile import Profile


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise EnvironmentProblem("plotting needs matplotlib: pip install 'hwprofile[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_profile(profile: Profile, out_dir: str | Path) -> list[Path]:
    """One PNG per (device, runner, batch, precision, mode) group; returns the paths written."""
    grouped = groups(profile.records)
    if not grouped:
        raise ConfigError("the profile has no successful records to plot")
    plt = _pyplot()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {str(out)!r}: {exc.strerror}") from None
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
        name = f"{device}__{runner.replace(':', '-')}__b{batch}__{precision}__{mode}.png"
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
