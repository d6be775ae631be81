"""The regression gate: pure decisions over two sets of records (nothing here measures or prints).

A record regresses when its ratio's confidence interval lies wholly beyond the threshold:
latency or memory above ``1 + t``, throughput below ``1 - t``. A point estimate beyond the
threshold whose interval is not wholly beyond it is a ``suspect``: it passes, and it is what
optional re-measurement measures again (pooling the new processes with the old) before deciding.
Thresholds and drift floors are per device type; ``docs/ci.md`` says how they were set.

Exit codes of a result: 1 a regression, else 3 a current measurement failed where the baseline
had one (a broken device never reads as a regression), else 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from hwprofile import bounds
from hwprofile.analysis import (
    DEFAULT_BOOT,
    IDENTITY_FIELDS,
    Identity,
    Ratio,
    identity,
    identity_dict,
    join,
    latency_ratio,
    memory_ratios,
    pool,
    throughput_ratio,
)
from hwprofile.bounds import shown
from hwprofile.errors import ConfigError
from hwprofile.profile import Record, preferred_memory
from hwprofile.runners import runner_class

METRICS = ("latency", "throughput", "memory")
DEVICE_TYPES = ("cpu", "cuda")

#: Default thresholds (fractions), for runners without an A/A calibration (hwprofile.gate._calibration).
#: cpu: backed by bench/bench_gate.py's A/A runs on the 2-vCPU reference box with 1 thread (0 false alarms
#: in 224 records, 95% of +15% caught; docs/ci.md); cuda: provisional, not yet measured on a GPU.
DEFAULT_THRESHOLDS = {"cpu": {"latency": 0.05, "throughput": 0.05, "memory": 0.10},
                      "cuda": {"latency": 0.03, "throughput": 0.03, "memory": 0.05}}
#: Drift between processes, as the sd of log latency: (the least a record measured in several
#: processes is credited with, the drift assumed for a record measured in one process).
DRIFT_FLOOR = {"cpu": (0.02, 0.035), "cuda": (0.01, 0.02)}
MEMORY_MIN_MB = 2.0  # memory growth below this is never a regression

STATUSES = ("regression", "failed", "suspect", "pass", "improvement", "missing", "new")


def device_type(runner: str) -> str:
    """The device type the runner declares (``cuda`` or ``cpu``); ``cpu`` for a runner this
    hwprofile does not know (e.g. one registered by a plugin that is not loaded now)."""
    try:
        kind = runner_class(runner).device_type
    except (ConfigError, ImportError, AttributeError):
        return "cpu"
    return kind if kind in DEVICE_TYPES else "cpu"


@dataclass(frozen=True)
class GateConfig:
    """What to gate and how strictly.

    A metric's threshold for a runner is, first found: ``thresholds[metric]`` (given by the user),
    ``calibrated[runner][metric]`` (measured A/A drift of this device, :mod:`hwprofile.gate._calibration`),
    the device type's default.
    """

    metrics: tuple[str, ...] = ("latency",)
    thresholds: dict = field(default_factory=dict)
    calibrated: dict = field(default_factory=dict)  # runner -> metric -> fraction
    confidence: float = 0.90
    n_boot: int = DEFAULT_BOOT
    seed: int = 0
    memory_min_mb: float = MEMORY_MIN_MB

    def __post_init__(self) -> None:
        bad = [m for m in [*self.metrics, *self.thresholds] if m not in METRICS]
        if bad or not self.metrics:
            raise ConfigError(f"unknown metric {bad[0] if bad else '(none)'!r}; expected some of {', '.join(METRICS)}")
        for m, t in self.thresholds.items():
            if not (isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t < 1):
                raise ConfigError(f"{m} threshold {t!r}: expected a fraction in [0, 1), e.g. 0.05 for 5%")
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) \
                or not 0.5 <= self.confidence < 1:
            raise ConfigError(f"confidence {self.confidence!r}: expected a number in [0.5, 1), e.g. 0.9")

    def threshold(self, metric: str, runner: str) -> float:
        return float(self.thresholds.get(metric, self.calibrated.get(runner, {}).get(
            metric, DEFAULT_THRESHOLDS[device_type(runner)][metric])))

    def threshold_source(self, metric: str, runner: str) -> str:
        """``option``, ``calibrated`` or ``default``: where :meth:`threshold` came from."""
        if metric in self.thresholds:
            return "option"
        return "calibrated" if metric in self.calibrated.get(runner, {}) else "default"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GateOptions:
    """How :func:`check` gates: ``check(..., gate=GateOptions(...))``, or each field as a keyword argument.

    ``thresholds`` maps a metric to a fraction (0.05 = 5%) and overrides the A/A-calibrated and
    default thresholds; ``remeasure`` measures regressed or suspect records that many more times
    before deciding; ``allow_mismatch`` gates against another device's baseline or despite settings
    that make the profiles incomparable; ``update_baseline`` creates the baseline (or adds this
    device to it) and, when the gate passes, replaces this device's records in it; ``out`` and
    ``quiet`` apply when ``check`` measures: where to save the profile, and no progress bar.
    """

    metrics: tuple[str, ...] = ("latency",)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    confidence: float = 0.90
    seed: int = 0
    remeasure: int = 0
    allow_mismatch: bool = False
    update_baseline: bool = False
    out: str | None = None
    quiet: bool = True

    def __post_init__(self) -> None:
        metrics = self.metrics.split(",") if isinstance(self.metrics, str) else self.metrics
        if not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str) for m in metrics):
            raise ConfigError(f"metrics {shown(self.metrics)}: expected metric names, e.g. ('latency', 'memory')")
        if not isinstance(self.thresholds, Mapping):
            raise ConfigError(f"thresholds {shown(self.thresholds)}: expected {{metric: fraction}}")
        object.__setattr__(self, "metrics", tuple(m.strip() for m in metrics))
        object.__setattr__(self, "thresholds", dict(self.thresholds))
        for name in ("allow_mismatch", "update_baseline", "quiet"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} {shown(getattr(self, name))}: expected True or False")
        if not isinstance(self.confidence, (int, float)) or isinstance(self.confidence, bool):
            raise ConfigError(f"confidence {shown(self.confidence)}: expected a number in [0.5, 1), e.g. 0.9")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed {shown(self.seed)}: expected an integer from 0 to 2**32-1")
        if self.out is not None and (not isinstance(self.out, str) or not self.out or "\x00" in self.out):
            raise ConfigError(f"out {shown(self.out)}: expected a file path or None")
        self.gate_config()  # metrics, thresholds and confidence are GateConfig's to check
        if self.remeasure != 0 or isinstance(self.remeasure, bool):  # 0: no re-measuring
            bounds.check("repeats", self.remeasure, "remeasure (--remeasure; 0: none)")

    def gate_config(self, calibrated: dict | None = None) -> GateConfig:
        return GateConfig(metrics=self.metrics, thresholds=dict(self.thresholds), calibrated=calibrated or {},
                          confidence=self.confidence, seed=self.seed)


@dataclass(frozen=True)
class Verdict:
    """The decision for one record and metric."""

    identity: dict
    label: str
    metric: str  # latency | throughput | memory:<name> | all (failed / missing / new)
    status: str  # one of STATUSES
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    threshold: float | None = None
    base: float | None = None
    current: float | None = None
    processes: tuple[int, int] = (0, 0)  # (baseline, current) processes behind the latency ratio
    reason: str = ""

    @property
    def name(self) -> str:
        i = self.identity
        return f"{self.label} b{i['batch']} {i['runner']} {i['precision']} {i['mode']} {self.metric}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["processes"] = list(self.processes)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        return cls(**{**data, "processes": tuple(data.get("processes", (0, 0)))})


@dataclass(frozen=True)
class GateResult:
    """The gate's decision: one verdict per record and metric, and the exit code they make.

    :func:`evaluate` fills the first three fields; :func:`hwprofile.check` also says what was checked
    against what and what it did to the baseline (the rest).
    """

    verdicts: tuple[Verdict, ...]
    config: GateConfig
    remeasured: tuple[dict, ...] = ()  # identities measured again before deciding
    device_id: str = ""  # the current profile's device
    baseline: str = ""  # the baseline's path (or "baseline" for one given as a Profile)
    baseline_device: str = ""  # the device of the baseline records gated against (another only if allowed)
    calibration_sessions: int = 0  # A/A sessions behind the baseline device's calibrated thresholds
    threads_note: str | None = None  # which CPU threads each runner of the current profile measured with
    messages: tuple[str, ...] = ()  # warnings and notes reported while checking (saved files, mismatches)
    layer_changes: tuple[dict, ...] = ()  # per regressed record, the layers whose time changed most
    measured: str | None = None  # where the profile measured for this check was saved
    baseline_update: str = ""  # "", "created", "updated" or "not updated" (update_baseline asked, gate failed)
    baseline_records: int = 0  # records written to the baseline when created or updated

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def notes(self) -> tuple[str, ...]:
        """What the reader of the verdicts should know about the measurement (e.g. its CPU threads)."""
        return tuple(n for n in (self.threads_note,) if n)

    def having(self, *statuses: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.status in statuses]

    @property
    def exit_code(self) -> int:
        if self.having("regression"):
            return 1
        return 3 if self.having("failed") else 0

    @property
    def outcome(self) -> str:
        return {0: "pass", 1: "regression", 3: "measurement failure"}[self.exit_code]

    def counts(self) -> dict[str, int]:
        return {s: len(self.having(s)) for s in STATUSES if self.having(s)}

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "exit_code": self.exit_code, "counts": self.counts(),
                "config": self.config.to_dict(), "remeasured": list(self.remeasured),
                "verdicts": [v.to_dict() for v in self.verdicts]}


# ----------------------------------------------------------------------------- decisions

def _decide(r: Ratio, t: float) -> str:
    lo = r.ci_low if r.ci_low is not None else r.ratio
    hi = r.ci_high if r.ci_high is not None else r.ratio
    if r.higher_is_better:
        lo, hi, value = 1 / hi, 1 / lo, 1 / r.ratio  # as "slowdown" ratios: above 1 is worse
        bound_bad, bound_good = 1 / (1 - t), 1 / (1 + t)
    else:
        value, bound_bad, bound_good = r.ratio, 1 + t, 1 / (1 + t)
    if lo > bound_bad:
        return "regression"
    if hi < bound_good:
        return "improvement"
    return "suspect" if value > bound_bad else "pass"


def _verdict(rb: Record, rc: Record, r: Ratio, t: float, status: str | None = None, reason: str = "") -> Verdict:
    return Verdict(identity_dict(identity(rb)), rb.label, r.metric, status or _decide(r, t), r.ratio, r.ci_low,
                   r.ci_high, t, r.base, r.current, (_processes(rb), _processes(rc)), reason)


def _processes(r: Record) -> int:
    if r.latency is None:
        return 1
    return len(r.latency.processes()) or len(r.latency.medians_ms) or 1


def judge_pair(rb: Record, rc: Record, config: GateConfig) -> list[Verdict]:
    """Verdicts for one joined record: one per gated metric, or one saying why there is none."""
    ident, label = identity_dict(identity(rb)), rb.label
    if not rb.ok:
        return [Verdict(ident, label, "all", "new", reason=f"baseline has no measurement ({rb.status})")]
    if rc.status == "skipped":
        return [Verdict(ident, label, "all", "missing", reason=rc.reason or "skipped")]
    if not rc.ok:
        return [Verdict(ident, label, "all", "failed", reason=f"{rc.status}: {rc.reason or 'no reason given'}")]
    out = []
    for metric in config.metrics:
        t = config.threshold(metric, rb.runner)
        floor = DRIFT_FLOOR[device_type(rb.runner)]
        if metric == "latency":
            r = latency_ratio(rb, rc, confidence=config.confidence, n_boot=config.n_boot, seed=config.seed,
                              drift_floor=floor)
        elif metric == "throughput":
            r = throughput_ratio(rb, rc, confidence=config.confidence, n_boot=config.n_boot, seed=config.seed,
                                 drift_floor=floor)
        else:
            out += _memory_verdicts(rb, rc, t, config.memory_min_mb)
            continue
        if r is None:
            out.append(Verdict(ident, label, metric, "missing", threshold=t, reason=f"no {metric} in a record"))
            continue
        out.append(_verdict(rb, rc, r, t))
    return out


def _memory_verdicts(rb: Record, rc: Record, t: float, min_mb: float) -> list[Verdict]:
    ratios = {m.metric.split(":", 1)[1]: m for m in memory_ratios(rb, rc)}
    name = preferred_memory(ratios, fallback=True)
    if name is None:
        return [Verdict(identity_dict(identity(rb)), rb.label, "memory", "missing", threshold=t,
                        reason="no memory reading in both records")]
    r = ratios[name]  # a single reading: no interval, so the ratio itself decides
    grown = (r.current or 0) - (r.base or 0)
    status = _decide(r, t)
    if status == "regression" and grown < min_mb:
        status = "pass"
    return [_verdict(rb, rc, r, t, status, f"{grown:+.1f} MB" if status == "regression" else "")]


def evaluate(base: Iterable[Record], current: Iterable[Record], config: GateConfig = GateConfig(),
             cross_device: bool = False) -> GateResult:
    """Judge every record of ``current`` against ``base`` (joined without the device; ``cross_device``
    also joins ``ort:cpu`` with ``ort:cuda``, see :func:`hwprofile.analysis._compare.join`)."""
    j = join(base, current, cross_device=cross_device)
    if not j.pairs:
        raise ConfigError("the baseline and the current profile have no record in common (same model, strategy, "
                          "scale, batch, runner, precision and mode); measure what the baseline holds")
    verdicts = [v for rb, rc in j.pairs for v in judge_pair(rb, rc, config)]
    verdicts += [Verdict(identity_dict(identity(r)), r.label, "all", "missing", reason="not in the current profile")
                 for r in j.only_base if r.ok]
    verdicts += [Verdict(identity_dict(identity(r)), r.label, "all", "new", reason="not in the baseline")
                 for r in j.only_current]
    order = {s: i for i, s in enumerate(STATUSES)}
    return GateResult(tuple(sorted(verdicts, key=lambda v: order[v.status])), config)


# -------------------------------------------------------------------------- re-measuring

Remeasure = Callable[[Sequence[Identity]], Sequence[Record]]


def suspects(result: GateResult) -> list[Identity]:
    """Identities whose latency or throughput regressed or is suspect: worth measuring again."""
    out = []
    for v in result.having("regression", "suspect"):
        if v.metric.startswith("memory"):
            continue
        ident = tuple(v.identity[k] for k in IDENTITY_FIELDS)
        if ident not in out:
            out.append(ident)
    return out


def evaluate_with_remeasure(base: Sequence[Record], current: Sequence[Record], config: GateConfig,
                            remeasure: Remeasure | None, cross_device: bool = False) -> tuple[GateResult, list[Record]]:
    """Evaluate; measure suspects again with ``remeasure`` and judge them on all their processes.

    Returns the result and the current records with the pooled re-measurements in place.
    """
    result = evaluate(base, current, config, cross_device)
    todo = suspects(result) if remeasure is not None else []
    if remeasure is None or not todo:
        return result, list(current)
    extra = {identity(r): r for r in remeasure(todo)}
    pooled = [pool(r, extra[identity(r)]) if identity(r) in extra else r for r in current]
    again = evaluate(base, pooled, config, cross_device)
    return dataclasses.replace(again, remeasured=tuple(identity_dict(i) for i in todo if i in extra)), pooled


def rates(results: Iterable[GateResult], status: str = "regression") -> float:
    """Fraction of latency verdicts with ``status`` over several results (for A/A and A/B studies)."""
    vs = [v for r in results for v in r.verdicts if v.metric == "latency"]
    return sum(v.status == status for v in vs) / len(vs) if vs else math.nan
