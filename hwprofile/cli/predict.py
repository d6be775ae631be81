"""``hwprofile predict FILE MODEL``: latency of any model on a profiled device, from its counts."""

from __future__ import annotations

import argparse

from ..complexity import complexity
from ..errors import ConfigError
from ..onnx_complexity import count_onnx
from ..predict import predict
from ..profile import Profile
from ..scaling import check_scale
from ..zoo import resolve
from ._common import int_in
from ._output import Column, Table, add_format_args, emit, num, view_of


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
    preds = predict(profile, counts, runner=args.runner, batch=args.batch)
    rows = [{"model": label, "device_id": p.group[0], "runner": p.group[1], "batch": p.group[2], "mode": p.group[4],
             "predicted_ms": p.latency_ms, "predicted_memory_mb": p.memory_mb,
             "fit": p.fit + (" (outside the measured range)" if p.outside else ""), "r2": p.model.r2,
             "loo_error_pct": p.loo_error_pct,
             "loo_pct": {"log-log": p.model.loo_pct("log-log"), "additive": p.model.loo_pct("additive")},
             "n": p.n, **counts} for p in preds]
    table = Table(f"Predicted latency of {label} (per batch)", (
        Column("runner", "runner"), Column("batch", "batch"), Column("mode", "mode"),
        Column("predicted_ms", "predicted ms", num), Column("predicted_memory_mb", "predicted MB", num),
        Column("fit", "fit"), Column("r2", "R²", num), Column("loo_error_pct", "LOO error %", num),
        Column("n", "n")), rows,
        notes=("fit: the one with the smaller leave-one-out error of the joint log-log fit (log t on log flops and "
               "log acts) and the additive fit (t = a·flops + b·acts + c); the log-log fit is not used outside the "
               "measured range of flops and acts; LOO error: median |predicted/measured - 1| of that fit when each "
               "measured model is left out; R²: of the log-log fit",))
    emit([table], view_of(args), rows)
    return 0
