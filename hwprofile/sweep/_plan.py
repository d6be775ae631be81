"""``run --plan``: what a sweep would measure and make, and about how long it would take, without measuring.

Planning needs neither the device nor the runners' libraries: ``--plan --device cuda:0`` works on a
CPU-only machine, so a CI configuration or a GPU run can be checked beforehand. Each item says which
input its runner runs (module | onnx | engine, as the runner declares it); the artifacts are the ONNX
exports and TensorRT engine builds the sweep would make (each once). ``estimated_s`` is a rough
expected wall time from the timing budget, the repeats, an iteration time guessed from the model's flops
(:data:`MACS_PER_S`), and the per-process, export and engine-build estimates below; it is a planning figure,
not a measurement.

``design`` says, per row (runner and batch), whether the sweep can answer "activations or flops?" before
anything is measured: the joint fit's standard errors per unit noise (:func:`hwprofile.analysis.design_se`)
and the |delta| it tells from 0 in 90% of sweeps at a record-to-record noise of :data:`PLAN_SIGMA`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hwprofile import env
from hwprofile.analysis import design_se
from hwprofile.errors import ConfigError, DeviceUnavailable
from hwprofile.profile import TimingConfig, needs_remeasure
from hwprofile.runners import RUNNER_NAMES, available_runners, check_runner_name, resolve_device, runner_class
from hwprofile.sweep._config import FINAL, Configuration, check_runner_options, plan, validate
from hwprofile.trackers.energy import MIN_WINDOW_S as ENERGY_MIN_WINDOW_S
from hwprofile.trackers.timing import MIN_SAMPLES, WARMUP_CAP_S
from hwprofile.zoo import complexity

#: Rough seconds to start one measuring process and import its libraries: a fork of the preloaded
#: server on CPU, a fresh interpreter that initialises CUDA on GPU.
START_S = {"cpu": 0.5, "cuda": 8.0}
#: Rough seconds to load a runner's input in the child (build the module, create the session, deserialize).
LOAD_S = {"module": 1.0, "onnx": 2.0, "engine": 1.0}
#: Rough seconds of one verified ONNX export: a base plus a share per block of the network (export time grows
#: with the graph, not the flops: on the 2-vCPU dev VM w x4 and r x4 took ~13 s, d x4 ~46 s, d x16 ~100 s).
EXPORT_S = (4.0, 0.55)
#: Rough multiply-adds per second of one iteration by device type and runner input, to guess how long big
#: models' iterations take (2-vCPU dev VM: eager torch ran EfficientNet-B0 scalings at 7-12 G/s, ONNX Runtime
#: at 25-35 G/s).
MACS_PER_S = {("cpu", "module"): 10e9, ("cpu", "onnx"): 30e9, ("cuda", "module"): 2e12, ("cuda", "onnx"): 3e12,
              ("cuda", "engine"): 4e12}
#: iterations after which the timed phase typically reaches its target interval on a quiet CPU
CI_ITERATIONS = 30
#: the record-to-record noise (SD of log latency) the plan's power column assumes (2-vCPU dev VM: 0.03-0.3)
PLAN_SIGMA = 0.10
#: Rough seconds of one TensorRT engine build: a base plus a share per optimization profile (batch size).
ENGINE_BUILD_S = (30.0, 15.0)


@dataclass(frozen=True)
class PlanItem(Configuration):
    """One configuration as ``run --plan`` shows it: what it runs and about how long it takes."""

    precision: str
    mode: str
    input: str  # module | onnx | engine
    artifact: str | None  # id of the artifact it runs (PlannedArtifact.id), None for a module
    estimated_s: float


@dataclass(frozen=True)
class PlannedArtifact:
    id: str
    kind: str  # onnx | engine
    model: str  # label, e.g. "EfficientNet-B0 dWr x2", or the user's file name
    precision: str
    action: str  # export | build | given (a user's .onnx file, used as it is)
    batches: tuple[int, ...] = ()  # engines: one optimization profile per batch size
    device: str | None = None  # engines: built on the device that runs them
    estimated_s: float = 0.0


@dataclass(frozen=True)
class PlanRow:
    """What one row (runner, batch) of the sweep can decide, per unit of record-to-record noise."""

    runner: str
    batch: int
    models: int  # records with counts (one per model)
    df: int | None
    se_delta_per_sigma: float | None  # None: the design cannot separate flops from acts
    se_acts_per_sigma: float | None
    se_flops_per_sigma: float | None
    decidable_delta: float | None  # |delta| told from 0 in 90% of sweeps at noise PLAN_SIGMA


@dataclass(frozen=True)
class SweepPlan:
    device: str
    device_present: bool
    runners: tuple[str, ...]
    items: tuple[PlanItem, ...]
    artifacts: tuple[PlannedArtifact, ...]
    estimated_s: float
    notes: tuple[str, ...] = field(default=())
    design: tuple[PlanRow, ...] = field(default=())
    plan_sigma: float = PLAN_SIGMA
    #: with a --budget, about when the sweep ends: records are started until the budget is spent, so the
    #: budget plus the longest record and its artifacts (None without a budget, or when the sweep fits in it)
    within_budget_s: float | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for a in d["artifacts"]:
            a["batches"] = list(a["batches"])
        d["runners"] = list(self.runners)
        d["notes"] = list(self.notes)
        return d


def _device_text(device: str) -> tuple[str, bool]:
    """(canonical device, whether it is present here); "auto" is what this machine would use."""
    if str(device).strip().lower() == "auto":
        return resolve_device("auto"), True
    try:
        kind, index = env.parse_device(device)
    except ValueError:
        raise ConfigError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from None
    name = "cpu" if kind == "cpu" else f"cuda:{index or 0}"
    try:
        resolve_device(name)
        return name, True
    except DeviceUnavailable:
        return name, False


def _runners(config, device: str, present: bool) -> tuple[list[str], list[str]]:
    notes = []
    if config.runners:
        runners = [check_runner_name(r) for r in config.runners]
    elif present:
        runners = available_runners(device)
    else:
        kind = device.split(":")[0]
        runners = [r for r in RUNNER_NAMES if runner_class(r).device_type == kind]
        notes.append(f"{device} is not present here: planned for every {kind} runner, availability not checked")
    wrong = [r for r in runners if runner_class(r).device_type != device.split(":")[0]]
    if wrong:
        raise ConfigError(f"{', '.join(wrong)} run on {runner_class(wrong[0]).device_type} devices, not {device}")
    kept = [r for r in runners if config.mode in runner_class(r).modes]
    return kept, notes


def _blocks(item) -> int:
    """Blocks of the network (its graph size); an ONNX file's are unknown (16, an EfficientNet-B0)."""
    return 16 if item.spec is None else sum(item.spec.depths)


def _iteration_s(item, kind: str, runner_input: str) -> float:
    """A rough guess of one iteration's seconds from the model's multiply-adds."""
    macs = complexity(item.spec).flops if item.spec is not None else 4e8
    return item.batch * macs / MACS_PER_S.get((kind, runner_input), 10e9)


def _record_s(timing: TimingConfig, it_s: float, kind: str = "cpu") -> float:
    """Seconds of one process's warm-up, timed phase and throughput window, for iterations of ``it_s``."""
    warm = min(max(timing.warmup_s, timing.warmup_iters * it_s), max(min(timing.budget_s, WARMUP_CAP_S), it_s))
    # the timed phase stops once the median's interval is narrow (fast models: after a few dozen iterations)
    timed = max(min(timing.budget_s, CI_ITERATIONS * it_s), MIN_SAMPLES * it_s, min(timing.budget_s, 0.3))
    window = max(timing.throughput_window_s, it_s) if timing.throughput_window_s > 0 else 0.0
    if kind == "cpu":  # a CPU runner's throughput comes from its timed iterations (no RAPL meter assumed)
        window = 0.0
    if kind == "cuda" and window > 0:  # GPU records read energy: the window lasts at least a second
        window = max(window, ENERGY_MIN_WINDOW_S)
    return warm + timed + window


def design_rows(items, runners: list[str]) -> tuple[PlanRow, ...]:
    """Per (runner, batch): the joint fit's standard errors per unit noise for the models planned."""
    rows = []
    for runner in runners:
        for batch in sorted({it.batch for it in items if it.runner == runner}):
            counts = [complexity(it.spec) for it in items if it.runner == runner and it.batch == batch
                      and it.spec is not None]
            se = design_se([c.flops for c in counts], [c.acts for c in counts]) if len(counts) >= 3 else None
            if se is None:
                rows.append(PlanRow(runner, batch, len(counts), None, None, None, None, None))
                continue
            rows.append(PlanRow(runner, batch, len(counts), se.df, round(se.se_delta, 3), round(se.se_acts, 3),
                                round(se.se_flops, 3), _round(se.decidable_delta(PLAN_SIGMA))))
    return tuple(rows)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def make_plan(config) -> SweepPlan:
    """The plan of ``config`` (a SweepConfig): items, artifacts and an estimated wall time."""
    validate(config)
    try:
        timing = TimingConfig(**config.timing)
    except TypeError as exc:
        raise ConfigError(f"unknown timing option: {exc}") from None
    device, present = _device_text(config.device)
    runners, notes = _runners(config, device, present)
    if not runners:
        raise ConfigError(f"empty sweep: no runner for {device}")
    check_runner_options(config, runners)
    items, more = plan(config, device, runners)
    notes += more
    kind = device.split(":")[0]
    batches: dict[str, set[int]] = {}
    for it in items:
        batches.setdefault(it.label, set()).add(int(it.batch))
    artifacts: dict[tuple, PlannedArtifact] = {}
    planned = []

    def onnx_artifact(it) -> PlannedArtifact:
        key = ("onnx", it.label, config.precision)
        if key not in artifacts:
            given = it.onnx_path is not None
            est = 0.0 if given else EXPORT_S[0] + EXPORT_S[1] * _blocks(it)
            artifacts[key] = PlannedArtifact(f"onnx:{len(artifacts)}", "onnx", it.label, config.precision,
                                             "given" if given else "export", estimated_s=round(est, 1))
        return artifacts[key]

    for it in items:
        cls = runner_class(it.runner)
        art = None
        if cls.input in ("onnx", "engine"):
            art = onnx_artifact(it)
        if cls.input == "engine":
            key = ("engine", it.label, config.precision, device)
            if key not in artifacts:
                bs = tuple(sorted(batches[it.label]))
                artifacts[key] = PlannedArtifact(f"engine:{len(artifacts)}", "engine", it.label, config.precision,
                                                 "build", bs, device,
                                                 round(ENGINE_BUILD_S[0] + ENGINE_BUILD_S[1] * len(bs), 1))
            art = artifacts[key]
        load = cls.load_estimate_s if cls.load_estimate_s is not None else LOAD_S.get(cls.input, 2.0)
        it_s = _iteration_s(it, kind, cls.input)
        est = timing.repeats * (START_S.get(kind, 8.0) + load + _record_s(timing, it_s, kind))
        planned.append(PlanItem(it.model, it.strategy, it.scale, it.batch, it.runner, config.precision, config.mode,
                                cls.input, art.id if art else None, round(est, 1)))
    baselines = len(runners) * START_S.get(kind, 8.0)  # one library-only child per runner (memory baseline)
    total = sum(p.estimated_s for p in planned) + sum(a.estimated_s for a in artifacts.values()) + baselines
    within = None
    if config.budget_s is not None and total > config.budget_s:
        arts = {a.id: a.estimated_s for a in artifacts.values()}
        longest = max(p.estimated_s + arts.get(p.artifact or "", 0.0) for p in planned)
        within = round(min(total, config.budget_s + longest), 1)
        notes.append(f"the --budget of {config.budget_s:g} s is shorter than the estimate: records it does not reach "
                     f"are saved as 'skipped', and the sweep ends after about {within:g} s")
    return SweepPlan(device, present, tuple(runners), tuple(planned), tuple(artifacts.values()),
                     round(total, 1), tuple(notes), design_rows(items, runners), within_budget_s=within)


# ----------------------------------------------------------------------------- a fleet (run --plan --executor ray)

#: Rough seconds to measure a device's peaks once (a fresh interpreter importing torch, then two timed phases).
PEAKS_S = {"cpu": 5.0, "cuda": 15.0}


@dataclass(frozen=True)
class KindPlan:
    """One device kind of a Ray cluster: its nodes, how many measure at once, and its share of the sweep."""

    kind: str
    device: str  # cpu | cuda
    nodes: int  # alive nodes of the kind
    nodes_used: int  # at most max_nodes of them measure at once
    slots: int  # measurements at once: one per node, one per GPU on GPU nodes
    records: int
    measuring_s: float  # the measurements one after another: items, the peaks, one baseline per runner and node
    estimated_s: float  # spread over the slots (at least the longest item)
    plan: SweepPlan


@dataclass(frozen=True)
class FleetPlan:
    kinds: tuple[KindPlan, ...]
    exports_s: float  # the ONNX exports (and engine builds), once, on the driver
    estimated_s: float  # exports, then the kinds side by side
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"kinds": [{**{k: v for k, v in dataclasses.asdict(kp).items() if k != "plan"},
                           "plan": kp.plan.to_dict()} for kp in self.kinds],
                "exports_s": self.exports_s, "estimated_s": self.estimated_s, "notes": list(self.notes)}


def fleet_plan(kinds: list[tuple[str, str, list[int], SweepPlan]], max_nodes: int | None = None,
               notes: tuple[str, ...] = ()) -> FleetPlan:
    """The expected wall time of a sweep on a cluster: ``kinds`` are (kind id, cpu|cuda, measurements each of its
    nodes runs at once, the kind's plan). A rough planning figure: the exports on the driver first, then each
    kind's measurements spread evenly over its slots (at least its longest item), the kinds side by side."""
    out, exports = [], {}
    for kind_id, device_type, capacities, kind_plan in kinds:
        used = sorted(capacities, reverse=True)[:max_nodes] if max_nodes else list(capacities)
        slots = sum(used)
        items = [i.estimated_s for i in kind_plan.items]
        for a in kind_plan.artifacts:  # an export serves every kind (the exporters' disk cache); engines are per device
            exports[(a.kind, a.model, a.precision, a.device if a.kind == "engine" else None)] = a.estimated_s
        baselines = len(used) * len(kind_plan.runners) * START_S.get(device_type, 8.0)
        work = sum(items) + PEAKS_S.get(device_type, 15.0) + baselines
        wall = max(max(items, default=0.0), work / slots) if slots else float("inf")
        out.append(KindPlan(kind_id, device_type, len(capacities), len(used), slots, len(items), round(work, 1),
                            round(wall, 1), kind_plan))
    exports_s = round(sum(exports.values()), 1)
    return FleetPlan(tuple(out), exports_s, round(exports_s + max((k.estimated_s for k in out), default=0.0), 1),
                     tuple(notes))




def still_to_measure(sweep_plan: SweepPlan, records=(), remeasure: str | None = None) -> tuple[int, float]:
    """(records left to measure, their estimated seconds) when ``records`` (a resumed profile's) are kept:
    finished records count as done unless ``remeasure`` asks for them again; the artifacts and baseline
    processes are counted in proportion."""
    done = {(r.model, r.strategy, float(r.scale), r.batch, r.runner, r.precision, r.mode) for r in records
            if r.status in FINAL and not needs_remeasure(r, remeasure)}
    left = [i for i in sweep_plan.items
            if (i.model, i.strategy, float(i.scale), i.batch, i.runner, i.precision, i.mode) not in done]
    if not sweep_plan.items:
        return 0, 0.0
    items_s = sum(i.estimated_s for i in sweep_plan.items)
    other = sweep_plan.estimated_s - items_s
    return len(left), round(sum(i.estimated_s for i in left) + other * len(left) / len(sweep_plan.items), 1)
