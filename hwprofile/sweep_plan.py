"""``run --plan``: what a sweep would measure and make, and about how long it would take, without measuring.

Planning needs neither the device nor the runners' libraries: ``--plan --device cuda:0`` works on a
CPU-only machine, so a CI configuration or a GPU run can be checked beforehand. Each item says which
input its runner runs (module | onnx | engine, as the runner declares it); the artifacts are the ONNX
exports and TensorRT engine builds the sweep would make (each once). ``estimated_s`` is a rough
expected wall time from the timing budget, the repeats, and the per-process, export and engine-build
estimates below; it is a planning figure, not a measurement.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .complexity import complexity
from .errors import ConfigError, DeviceUnavailable
from .measure import TimingConfig
from .quality import needs_remeasure
from .runners import RUNNER_NAMES, available_runners, check_runner_name, env, resolve_device, runner_class
from .sweep_config import FINAL, check_runner_options, plan, validate

#: Rough seconds to start one measuring process and import its libraries: a fork of the preloaded
#: server on CPU, a fresh interpreter that initialises CUDA on GPU.
START_S = {"cpu": 0.5, "cuda": 8.0}
#: Rough seconds to load a runner's input in the child (build the module, create the session, deserialize).
LOAD_S = {"module": 1.0, "onnx": 2.0, "engine": 1.0}
#: Rough seconds of one verified ONNX export: a base plus a share per GFLOP (multiply-adds) of the model.
EXPORT_S = (10.0, 5.0)
#: Rough seconds of one TensorRT engine build: a base plus a share per optimization profile (batch size).
ENGINE_BUILD_S = (30.0, 15.0)


@dataclass(frozen=True)
class PlanItem:
    model: str
    strategy: str | None
    scale: float
    batch: int
    runner: str
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
class SweepPlan:
    device: str
    device_present: bool
    runners: tuple[str, ...]
    items: tuple[PlanItem, ...]
    artifacts: tuple[PlannedArtifact, ...]
    estimated_s: float
    notes: tuple[str, ...] = field(default=())

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


def _gflops(item) -> float:
    if item.spec is None:
        return 1.0
    return complexity(item.spec).flops / 1e9


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
    per_run = timing.warmup_s + timing.budget_s + timing.throughput_window_s

    def onnx_artifact(it) -> PlannedArtifact:
        key = ("onnx", it.label, config.precision)
        if key not in artifacts:
            given = it.onnx_path is not None
            est = 0.0 if given else EXPORT_S[0] + EXPORT_S[1] * _gflops(it)
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
        est = timing.repeats * (START_S.get(kind, 8.0) + load + per_run)
        planned.append(PlanItem(it.model, it.strategy, it.scale, it.batch, it.runner, config.precision, config.mode,
                                cls.input, art.id if art else None, round(est, 1)))
    baselines = len(runners) * START_S.get(kind, 8.0)  # one library-only child per runner (memory baseline)
    total = sum(p.estimated_s for p in planned) + sum(a.estimated_s for a in artifacts.values()) + baselines
    if config.budget_s is not None and total > config.budget_s:
        notes.append(f"the --budget of {config.budget_s:g} s is shorter than the estimate: records it does not reach "
                     "are saved as 'skipped'")
    return SweepPlan(device, present, tuple(runners), tuple(planned), tuple(artifacts.values()),
                     round(total, 1), tuple(notes))


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
