"""``hwprofile predict FILE MODEL``: latency of any model on a profiled device, from its counts."""

from __future__ import annotations

import argparse

from hwprofile.analysis import LOO_LIMIT_PCT, model_family, predict
from hwprofile.cli._caveats import caveat_notes, caveats_cell, warn_on_stderr
from hwprofile.cli._common import int_in
from hwprofile.cli._output import ALWAYS, Column, Table, add_format_args, emit, num, view_of
from hwprofile.errors import ConfigError
from hwprofile.graph import count_onnx
from hwprofile.profile import Profile
from hwprofile.zoo import check_scale, complexity, resolve


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict a model's latency from a device profile's runtime model")
    p.add_argument("profile")
    p.add_argument("model", help="zoo name or .onnx file")
    p.add_argument("--strategy")
    p.add_argument("--scale", type=str)
    p.add_argument("--batch", type=int_in(1, 1 << 20, "--batch"))
    p.add_argument("--runner")
    add_format_args(p)
    p.set_defaults(handler=run)


def model_counts(model: str, strategy: str | None, s: str | None) -> tuple[str, dict]:
    """(label, counts) of a zoo model (optionally scaled) or an ONNX file."""
    if model.lower().endswith(".onnx"):
        if strategy or s:
            raise ConfigError("--strategy/--scale apply to zoo models, not ONNX files")
        oc = count_onnx(model, batch=1)
        return model, {"flops": oc.flops, "params": oc.params, "acts": oc.acts}
    if s is not None and strategy is None:
        raise ConfigError("--scale needs --strategy")
    spec = resolve(model, strategy, check_scale(s if s is not None else 1.0)) if strategy else resolve(model)
    cx = complexity(spec)
    return spec.name, {"flops": cx.flops, "params": cx.params, "acts": cx.acts}


def run(args: argparse.Namespace) -> int:
    profile = Profile.load(args.profile)
    label, counts = model_counts(args.model, args.strategy, args.scale)
    family = model_family(args.model)
    preds = predict(profile, counts, runner=args.runner, batch=args.batch, family=family, label=label)
    rows = [{"model": label, "device_id": p.group[0], "runner": p.group[1], "batch": p.group[2], "mode": p.group[4],
             "predicted_ms": p.latency_ms, "predicted_memory_mb": p.memory_mb, "fit": p.fit,
             "outside_log_log_range": p.outside, "r2": p.model.r2, "loo_error_pct": p.loo_error_pct,
             "loo_pct": {"log-log": p.model.loo_pct("log-log"), "additive": p.model.loo_pct("additive")},
             "n": p.n, "family": family, "extrapolated": p.extrapolated,
             "measured_range": p.measured.to_dict() if p.measured else None,
             "caveats": [c.to_dict() for c in p.caveats], "caveat": ", ".join(c.short for c in p.caveats),
             **counts} for p in preds]
    warnings = caveat_notes(rows)
    table = Table(f"Predicted latency of {label} (per batch)", (
        Column("runner", "runner", priority=ALWAYS), Column("batch", "batch", priority=ALWAYS),
        Column("mode", "mode", priority=4), Column("predicted_ms", "predicted ms", num, priority=ALWAYS),
        Column("predicted_memory_mb", "predicted MB", num, priority=3), Column("fit", "fit", priority=1),
        Column("r2", "R²", num, priority=4), Column("loo_error_pct", "LOO error %", num, priority=1),
        Column("n", "n", priority=2), Column("caveat", "caveats", caveats_cell, priority=ALWAYS, wrap=30)),
        rows, name="predict",
        notes=(*warnings,
               "fit: the one with the smaller leave-one-out error of the joint log-log fit (log t on log flops and "
               "log acts) and the additive fit (t = a·flops + b·acts + c); outside the measured range of flops and "
               "acts the additive fit answers; LOO error: median |predicted/measured - 1| of the fit that answered "
               f"when each measured model is left out (above {LOO_LIMIT_PCT:g}%: flagged); R²: of the log-log fit; "
               "n: usable records (clean and noisy; disturbed and failed ones are left out)"))
    view = view_of(args)
    warn_on_stderr(warnings, view)
    emit([table], view, rows)
    return 0
