"""What ``show --json`` and ``check --json`` write, as typed records, and their published JSON Schemas.

Every value is plain JSON data: devices are their fingerprints (objects, never a Python repr), every
record row names its model, strategy and scale as fields, and units are in the field names. The
schemas in ``docs/schemas/`` are generated from these models (``python -m hwprofile.report._outputs``; a test
fails when a committed schema is stale), so a field added to a model reaches its schema.

Rows of "does runtime follow activations or flops?" (:class:`FollowsRow`, the per-group answer of
:func:`hwprofile.analysis.answer`) type the fields every group has and accept further fields (their
analysis grows); everything else refuses unknown fields.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hwprofile.analysis import GroupAnswer, Verdict, answer, equal_flops, record_peaks, roof, shares, strategy_growth
from hwprofile.atomic import write_text
from hwprofile.gate import GateResult
from hwprofile.profile import (
    Device,
    Mode,
    Precision,
    Profile,
    Quality,
    Record,
    Status,
    count_rows,
    percentiles,
    quality_of,
)
from hwprofile.report._summary import summarize

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"

_CLOSED = ConfigDict(extra="forbid", defer_build=True)
_OPEN = ConfigDict(extra="allow", defer_build=True)


class RecordRow(BaseModel):
    """One record as ``show`` reports it: identity, readings (ms, MB, per second) and quality."""

    model_config = _CLOSED

    label: str = Field(description="model, strategy and scale for people: 'EfficientNet-B0 dWr x4'")
    model: str = Field(description="zoo base name, or the file name of an ONNX model")
    strategy: str | None = Field(description="scaling strategy (d, w, r, dw, dwr, dWr, ...); null for the base model")
    scale: float = Field(description="flops factor s of the strategy (1 for the base model)")
    device_id: str
    runner: str
    batch: int
    precision: Precision
    mode: Mode
    resolution: int
    source: Literal["zoo", "onnx", "imported"]
    status: Status
    reason: str | None = Field(description="why the status is not ok")
    median_ms: float | None = Field(description="median of the per-process medians (the latency every ratio uses)")
    p50_ms: float | None = Field(description="median of every sample, pooled over processes")
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    min_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    cv: float | None = Field(description="coefficient of variation of the pooled samples")
    repeats: int | None = Field(description="processes measured")
    iterations: int | None = Field(description="timed iterations, all processes")
    noisy: bool | None
    throughput_per_s: float | None = Field(description="images per second, back to back")
    memory_mb: float | None
    memory_metric: str | None = Field(description="which memory reading memory_mb is (see the profile's record)")
    foreign_cpu_cores: float | None = Field(description="CPU cores other processes kept busy while measuring")
    flops: int | None = Field(description="multiply-adds per image")
    params: int | None
    acts: int | None = Field(description="activations per image (pycls's definition)")
    quality: Quality | None
    quality_reasons: list[str]
    quality_recorded: bool = Field(description="false: quality assessed now from the stored readings")
    compute_share: float | None = Field(description="achieved FLOP/s over the device's peak (a fraction)")
    bandwidth_share: float | None = Field(description="activation traffic per second over copy bandwidth")
    compute_peak: str | None
    above_peak: list[str] = Field(description="the shares above 1: the record beat a measured peak (no share of the "
                                              "hardware: the peak was measured too low, or data stayed in cache)")
    peaks_disturbed: bool = Field(description="the device peaks were measured while other processes were busy")
    roof: str | None = Field(description="compute | memory | both | above | null (below both)")
    joules_per_image: float | None = Field(description="energy per image over the throughput window (J)")
    mean_watts: float | None = Field(description="mean power over the throughput window (W)")
    energy_meter: str | None = Field(description="which counter the energy came from (NVML, RAPL)")
    energy_reason: str | None = Field(description="why the record holds no energy reading")
    why: str | None = Field(description="the status reason, else what made the record not clean")


def record_row(r: Record, peaks: dict | None = None) -> RecordRow:
    lat = r.latency
    mem, mem_name = r.memory_mb()
    q = quality_of(r)
    share = shares(r, peaks)
    reasons = [] if q is None else list(q.reasons)
    return RecordRow(
        label=r.label, model=r.model, strategy=r.strategy, scale=r.scale, device_id=r.device_id, runner=r.runner,
        batch=r.batch, precision=r.precision, mode=r.mode, resolution=r.resolution, source=r.source,
        status=r.status, reason=r.reason, median_ms=lat and lat.median_ms, **percentiles(lat),
        cv=lat and lat.cv, repeats=lat and lat.repeats, iterations=lat and lat.iterations,
        noisy=lat and lat.noisy, throughput_per_s=r.throughput.samples_per_s if r.throughput else None,
        memory_mb=mem, memory_metric=mem_name, foreign_cpu_cores=r.foreign_load, flops=r.flops, params=r.params,
        acts=r.acts, quality=None if q is None else q.quality, quality_reasons=reasons,
        quality_recorded=r.quality is not None, compute_share=share["compute_share"],
        bandwidth_share=share["bandwidth_share"], compute_peak=share["compute_peak"],
        above_peak=share["above_peak"], peaks_disturbed=share["peaks_disturbed"],
        roof="above" if share["above_peak"] else roof(share),
        joules_per_image=r.energy.joules_per_image if r.energy else None,
        mean_watts=r.energy.mean_watts if r.energy else None, energy_meter=r.energy.meter if r.energy else None,
        energy_reason=r.energy.reason if r.energy else None, why=r.reason or ("; ".join(reasons) or None))


def record_rows(profile: Profile) -> list[RecordRow]:
    return [record_row(r, record_peaks(profile, r)) for r in profile.records]


class Excluded(BaseModel):
    """A record a group's fit left out (hwprofile.analysis.usable), with why."""

    model_config = _CLOSED

    model: str
    status: Status
    quality: Quality | None
    why: str


class EstimateOut(BaseModel):
    """A point estimate with its interval (``ci``: [low, high]) and standard error."""

    model_config = _CLOSED

    value: float
    ci: list[float]
    se: float | None


class GroupRow(BaseModel):
    """The group a row is about: device, runner, batch, precision and mode."""

    model_config = _CLOSED

    device_id: str
    runner: str
    batch: int
    precision: Precision
    mode: Mode


class FollowsRow(GroupRow):
    """One (device, runner, batch, precision, mode) group: does runtime follow activations or flops? The joint
    fit log t = k + beta_flops log flops + beta_acts log acts, its verdict and the additive share of time
    (docs/measurement.md, "The answer"; further fields allowed)."""

    model_config = _OPEN

    n: int = Field(description="usable records fitted (clean and noisy, weighted by their spread)")
    n_total: int = Field(description="records of the group")
    excluded: list[Excluded] = Field(description="records left out (disturbed, not ok), with why")
    weights: str = Field(description="how records were weighted")
    verdict: Verdict = Field(description="acts | flops | both | neither | not distinguishable")
    basis: str = Field(description="the intervals the verdict rests on, in words")
    beta_flops: EstimateOut | None = Field(description="elasticity of latency in flops (the joint fit)")
    beta_acts: EstimateOut | None = Field(description="elasticity of latency in acts (the joint fit)")
    delta: EstimateOut | None = Field(description="beta_acts - beta_flops")
    beta_params: EstimateOut | None = Field(description="params elasticity in a flops + acts + params fit (context)")
    share_acts: EstimateOut | None = Field(description="share of time that scales with acts (the additive fit)")
    reading: str | None = Field(description="the row in one line for people")
    loo_pct: dict[str, float | None] = Field(description="median leave-one-out error (%) of the joint and additive "
                                                         "fits")
    prediction_fit: str | None = Field(description="the fit predict and select use (the smaller leave-one-out)")
    decide: dict[str, Any] | None = Field(description="for an undecided group: what is expected to decide it")
    note: str | None = Field(description="why the group has no fit")


class ContrastRow(GroupRow):
    """At equal flops: one strategy's latency relative to w at the same scale (the paper's point)."""

    model_config = _CLOSED

    model: str
    scale: float
    strategy: str
    reference: str
    latency_ratio: EstimateOut
    flops_ratio: float
    acts_ratio: float
    text: str


class ImportedCountRow(BaseModel):
    """An imported record of a zoo model: the table's counts beside hwprofile's (hwprofile import)."""

    model_config = _CLOSED

    model: str
    zoo_model: str | None
    resolution: int
    train_res: int | None
    flops_table: int | None
    flops_hwprofile: int | None
    flops_ratio: float | None
    params_table: int | None
    params_hwprofile: int | None
    params_ratio: float | None
    acts_table: int | None
    acts_hwprofile: int | None
    acts_ratio: float | None


class GrowthRow(BaseModel):
    """One strategy and scale: latency growth beside flops and acts growth (ratios to the base model)."""

    model_config = _CLOSED

    device_id: str
    runner: str
    batch: int
    mode: Mode
    model: str
    strategy: str | None
    scale: float
    flops_ratio: float
    acts_ratio: float
    latency_ratio: float
    latency_exponent: float | None


class SummaryRow(GroupRow):
    """One group's answer in a few words (hwprofile.report._summary): the verdict, the share of time with activations,
    the records used of the group's, and for an undecided group what is expected to decide it."""

    model_config = _CLOSED

    verdict: Verdict = Field(description="acts | flops | both | neither | not distinguishable")
    decided: bool = Field(description="the verdict is acts, flops or both")
    fitted: bool = Field(description="false: too few usable records, or flops and acts cannot be told apart")
    leans: str | None = Field(description="for an undecided group: the verdict its estimates point to")
    share_acts: EstimateOut | None = Field(description="share of time that scales with acts (the additive fit)")
    n_used: int = Field(description="usable records fitted (clean and noisy)")
    n_total: int = Field(description="records of the group")
    left_out: dict[str, int] = Field(description="records left out, by kind (disturbed, failed, ...)")
    basis: str = Field(description="the intervals the verdict rests on, in words")
    to_decide: str | None = Field(description="for an undecided group: what is expected to decide it")


class Action(BaseModel):
    """A command that moves the answer on (``run --resume FILE --until-decided``, ``--remeasure disturbed``)."""

    model_config = _CLOSED

    command: list[str] = Field(description="the command, one argument per item")
    why: str


class Summary(BaseModel):
    """The answer first: what ``show`` and ``run`` print before their tables (hwprofile.report._summary)."""

    model_config = _CLOSED

    kind: Literal["answer", "one model", "no fit", "no records"] = Field(
        description="answer: one row per group; otherwise line says in one line why there is none")
    line: str | None = Field(description="the one line of a profile without an answer (else null)")
    rows: list[SummaryRow] = Field(description="per group of more than one record")
    actions: list[Action] = Field(description="what to run to decide the undecided groups")


class ShowOutput(BaseModel):
    """``hwprofile show --json``."""

    model_config = _CLOSED

    summary: Summary = Field(description="the answer first: per group the verdict, the share of time with "
                                         "activations, the records used, and what to run to decide the rest")
    devices: dict[str, Device] = Field(description="device id -> its fingerprint (with measured peaks)")
    records: list[RecordRow]
    follows: list[FollowsRow]
    contrast: list[ContrastRow]
    growth: list[GrowthRow]
    imported_counts: list[ImportedCountRow] = Field(description="imported records of zoo models (else empty)")


def show_output(profile: Profile, path: str | None = None,
                answers: Sequence[GroupAnswer] | None = None) -> ShowOutput:
    """What ``show --json`` prints; ``path`` (the profile's file) goes into the summary's commands, ``answers``
    (:func:`hwprofile.analysis.answer` of the profile's records) are computed when not given."""
    answers = answer(profile.records) if answers is None else answers
    return ShowOutput(summary=Summary.model_validate(summarize(profile, answers, path).to_dict()),
                      devices=dict(profile.devices), records=record_rows(profile),
                      follows=[FollowsRow.model_validate(a.to_dict()) for a in answers],
                      contrast=[ContrastRow.model_validate(c.to_dict()) for c in equal_flops(profile.records)],
                      growth=[GrowthRow.model_validate(r) for r in strategy_growth(profile.records)],
                      imported_counts=[ImportedCountRow.model_validate(r) for r in count_rows(profile.records)])


def show_json(profile: Profile, path: str | None = None, answers: Sequence[GroupAnswer] | None = None) -> dict:
    """The data ``show --json`` prints (plain JSON types)."""
    return dump(show_output(profile, path, answers))


def dump(model: BaseModel) -> dict:
    """Plain JSON data; fingerprints exactly as stored."""
    out = model.model_dump(mode="json")
    if isinstance(model, ShowOutput):
        out["devices"] = {k: d.fingerprint() for k, d in model.devices.items()}
    return out


# ---------------------------------------------------------------------------------------------- check

class Identity(BaseModel):
    model_config = _CLOSED

    model: str
    strategy: str | None
    scale: float
    batch: int
    runner: str
    precision: Precision
    mode: Mode


class VerdictRow(BaseModel):
    model_config = _CLOSED

    identity: Identity
    label: str
    metric: str = Field(description="latency | throughput | memory:<reading> | all (failed, missing, new)")
    status: Literal["regression", "failed", "suspect", "pass", "improvement", "missing", "new"]
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    threshold: float | None = Field(description="a fraction: 0.05 = 5%")
    base: float | None
    current: float | None
    processes: list[int] = Field(description="[baseline, current] processes behind the ratio")
    reason: str


class GateConfigOut(BaseModel):
    model_config = _CLOSED

    metrics: list[str]
    thresholds: dict[str, float]
    calibrated: dict[str, dict[str, float]]
    confidence: float
    n_boot: int
    seed: int
    memory_min_mb: float


class CheckOutput(BaseModel):
    """``hwprofile check --json``: the gate's verdicts."""

    model_config = _CLOSED

    baseline: str
    device_id: str
    layer_changes: list[dict[str, Any]]
    threads_note: str | None
    outcome: Literal["pass", "regression", "measurement failure"]
    exit_code: Literal[0, 1, 3]
    counts: dict[str, int]
    config: GateConfigOut
    remeasured: list[dict[str, Any]]
    verdicts: list[VerdictRow]


class CheckBaselineCreated(BaseModel):
    """``hwprofile check --json`` on first use: the baseline was created."""

    model_config = _CLOSED

    outcome: Literal["baseline created"]
    exit_code: Literal[0]
    baseline: str
    device_id: str
    records: int


class CheckCalibration(BaseModel):
    """``hwprofile check --calibrate --json``: one A/A session and the thresholds after it."""

    model_config = _CLOSED

    baseline: str
    device_id: str
    session: dict[str, Any]
    thresholds: dict[str, dict[str, float]]
    sessions: int


def check_json(result: GateResult, extra: dict) -> dict:
    """The data ``check --json`` prints (``extra``: baseline, device_id, layer_changes, threads_note), as
    :class:`CheckOutput` validates it."""
    return CheckOutput.model_validate({**extra, **result.to_dict()}).model_dump(mode="json")


# ---------------------------------------------------------------------------------------------- schemas

#: file name -> the type its schema describes
SCHEMAS: dict[str, Any] = {
    "show.schema.json": ShowOutput,
    "check.schema.json": CheckOutput | CheckBaselineCreated | CheckCalibration,
}


def json_schema(name: str) -> dict:
    schema = TypeAdapter(SCHEMAS[name]).json_schema(mode="serialization")
    command = name.split(".")[0]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://hwprofile.invalid/docs/schemas/{name}",
            "description": f"What `hwprofile {command} --json` prints (generated from hwprofile.report; do not "
                           "edit by hand: python -m hwprofile.report._outputs)", **schema}


def render(name: str) -> str:
    return json.dumps(json_schema(name), indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else SCHEMA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name in SCHEMAS:
        write_text(folder / name, render(name), replace=True, what="schema")
        sys.stdout.write(f"wrote {folder / name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
