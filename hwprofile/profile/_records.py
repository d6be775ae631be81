"""Typed, validated profile data (pydantic v2): what a profile holds and the ranges each field allows.

Every field has a type and a range: numbers are finite (no NaN, no Infinity), latencies and
throughputs positive, batches >= 1, counts non-negative integers that fit in 64 bits, statuses from
:data:`STATUSES`. Units are in the field names (``*_ms``, ``*_mb``, ``samples_per_s``). Numbers are
*strict*: ``"8.6"`` or ``true`` where a number belongs is refused, not coerced.

``profiles/schema.json`` is generated from these models (``python -m hwprofile.profile._schema``).
Validation failures become one-line :class:`~hwprofile.errors.SchemaError` messages naming the
record (index and label) and the field (see :func:`describe_error`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NamedTuple, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from hwprofile.errors import SchemaError, clip
from hwprofile.vocabulary import (  # noqa: F401  (the one source of each enumeration; re-exported)
    MEASURED_STATUSES,
    MODES,
    PRECISIONS,
    STATUSES,
    Mode,
    Precision,
    Quality,
    Status,
)
from hwprofile.zoo import scaled_label

INT64_MAX = 2**63 - 1

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
PositiveInt = Annotated[int, Strict(), Field(ge=1, le=INT64_MAX)]
Text = Annotated[str, Strict(), Field(max_length=4096)]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=512)]
Flag = Annotated[bool, Strict()]

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, ser_json_inf_nan="null", defer_build=True)
_OPEN = ConfigDict(extra="allow", allow_inf_nan=False, ser_json_inf_nan="null", defer_build=True)


class _Model(BaseModel):
    def to_dict(self) -> dict:
        """Plain JSON types; fields left unset and None statistics are left out."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_dict(cls, data: Any, where: str = ""):
        """Validate ``data``; a problem is one SchemaError line naming the field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SchemaError(f"{where or cls.__name__}: {describe_error(exc)}") from None


class LatencyStats(_Model):
    """Latency per batch in milliseconds; ``median_ms`` is the median of the per-process medians."""

    model_config = ConfigDict(**_OPEN, frozen=True)

    median_ms: Positive
    mean_ms: NonNegative | None = None
    p90_ms: NonNegative | None = None
    p99_ms: NonNegative | None = None
    min_ms: NonNegative | None = None
    max_ms: NonNegative | None = None
    std_ms: NonNegative | None = None
    iqr_ms: NonNegative | None = None
    cv: NonNegative | None = None
    noisy: Flag | None = None
    median_ci_ms: Annotated[list[NonNegative], Field(min_length=2, max_length=2)] | None = None
    iterations: Count | None = None
    repeats: PositiveInt | None = None
    timing_method: Text | None = None
    samples_ms: list[list[NonNegative]] = Field(default_factory=list)  # raw samples, one list per process
    medians_ms: list[Positive] = Field(default_factory=list)  # one per process
    repeat_spread: NonNegative | None = None  # max/min - 1 of the per-process medians
    pooled_processes: PositiveInt | None = None  # set when check pooled re-measurements in

    def processes(self) -> list[list[float]]:
        """The non-empty raw sample lists, one per process."""
        return [list(s) for s in self.samples_ms if s]


class Throughput(_Model):
    """Images per second measured back to back (``per_repeat_samples_per_s``: one per process)."""

    model_config = ConfigDict(**_OPEN, frozen=True)

    samples_per_s: Positive
    window_s: NonNegative | None = None
    iterations: Count | None = None
    batch: PositiveInt | None = None
    per_repeat_samples_per_s: list[Positive] = Field(default_factory=list)
    source: Text | None = None  # "timed iterations" (a CPU runner without an energy meter) | None: its own window


class Energy(_Model):
    """Energy over the throughput window (hwprofile.trackers.energy): joules per image and mean watts from a
    device-wide counter (NVML on GPU, RAPL on CPU), summed over the record's processes; or, with no counter,
    ``reason`` says why there is none."""

    model_config = ConfigDict(**_STRICT, frozen=True)

    joules_per_image: NonNegative | None = None
    mean_watts: NonNegative | None = None
    joules: NonNegative | None = None
    window_s: NonNegative | None = None  # summed over the windows (one per process)
    images: Count | None = None
    windows: Count | None = None
    meter: Text | None = None  # "nvml total energy" | "rapl package energy"
    scope: Text | None = None  # what the counter covers (device-wide / package-wide)
    reason: Text | None = None  # why there is no reading


class MemoryReading(_Model):
    """One labelled memory reading; ``definition`` says what was measured."""

    model_config = ConfigDict(**_STRICT, frozen=True)

    value_mb: Number
    definition: Text = ""


class RunnerSettings(_Model):
    """What the runner actually used (threads, providers, timing...); runner-specific keys are kept as given."""

    model_config = ConfigDict(**_OPEN, frozen=True)

    threads: Count | None = None
    executor: Literal["local", "ray"] | None = None  # how the record was measured (issue 15)
    node: Text | None = None  # the machine of a fleet that measured it
    foreign_cpu_cores: list[NonNegative] | None = None  # CPU cores other processes kept busy

    def to_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_unset=True)


class _PeakRate(BaseModel):
    """One measured matmul peak (hwprofile.measure._peaks): FLOP/s (2 per multiply-add), median and best."""

    model_config = ConfigDict(**_OPEN)

    flops_per_s: Positive
    flops_per_s_best: Positive | None = None


class _CopyRate(BaseModel):
    """The measured copy bandwidth: bytes read plus written per second, median and best."""

    model_config = ConfigDict(**_OPEN)

    gb_per_s: Positive
    gb_per_s_best: Positive | None = None


class _Peaks(BaseModel):
    """What readers use of measured peaks; everything else a peaks entry holds is kept as given."""

    model_config = ConfigDict(**_OPEN, populate_by_name=True)

    error: Text | None = None  # why the peaks could not be measured (then nothing else is read)
    device: Text | None = None
    threads: PositiveInt | None = None  # the CPU threads the peaks were measured with
    matmul_fp32: _PeakRate | None = None
    matmul_fp16: _PeakRate | None = None
    matmul_tf32: _PeakRate | None = None
    copy_: _CopyRate | None = Field(None, alias="copy")
    flops_per_s: Positive | None = None  # the derived form a layers report stores (analysis' device_peaks)
    bytes_per_s: Positive | None = None
    ridge: Positive | None = None
    foreign_cpu_cores: NonNegative | None = None  # other load on the CPU while they were measured
    disturbed: Flag | None = None  # measured while other processes kept the CPU busy, after every retry
    at_threads: dict[Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}$")], "_Peaks"] | None = None


_Peaks.model_rebuild()


def check_peaks(value: dict[str, Any]) -> dict[str, Any]:
    """Validate measured peaks where a reader divides by them (positive, finite, the right types); the dict
    itself is kept as stored. A failure names the sub-field."""
    if isinstance(value, dict) and "error" in value:
        error = value["error"]
        if not isinstance(error, str):
            raise ValueError(f"peaks.error: expected a text, got {clip(repr(error))}")
        return value
    try:
        _Peaks.model_validate(value)
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None
    return value


#: Measured peaks (hwprofile.measure._peaks) as stored: free-form, with what readers use validated.
PeaksDict = Annotated[dict[str, Any], AfterValidator(check_peaks)]


class Device(_Model):
    """A device's fingerprint (CPU/GPU, OS, library versions; free-form), optionally its ``peaks``."""

    model_config = ConfigDict(**_OPEN, frozen=True)

    id: Text | None = None
    device: Text | None = None
    kind: Text | None = None
    peaks: PeaksDict | None = None

    def fingerprint(self) -> dict:
        """The fingerprint as plain JSON data, exactly as stored."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_dict(self) -> dict:
        return self.fingerprint()


#: The one "which memory reading" rule: the most specific reading first (tables, predictions, the gate).
MEMORY_PREFERENCE = ("torch_max_allocated_mb", "nvml_used_delta_mb", "cpu_peak_rss_increase_mb", "cpu_peak_rss_mb")


def preferred_memory(names: Any, fallback: bool = False) -> str | None:
    """The reading to show or gate among ``names``: by :data:`MEMORY_PREFERENCE`, else (``fallback``) the first
    name in sorted order, else None."""
    have = set(names)
    pick = next((n for n in MEMORY_PREFERENCE if n in have), None)
    return pick if pick is not None or not fallback else next(iter(sorted(have)), None)


#: The runner name of every imported record starts with this (``imported:timm``); see :attr:`Record.imported`.
IMPORTED_RUNNER_PREFIX = "imported:"
#: Where a record comes from: a zoo spec or an ONNX file measured by hwprofile, or a row of a table someone
#: else measured (``hwprofile import``).
Source = Literal["zoo", "onnx", "imported"]
# --------------------------------------------------------------------------- per-layer breakdowns
#: A row of a per-layer breakdown (hwprofile.analysis._layers): a timed ``layer``, ``overhead`` that is no layer
#: (layout reorders, reformats, Python between modules), or, in reports only, the ``gap`` row.
LayerKind = Literal["layer", "overhead", "gap"]
#: What clock the per-layer times come from: ``cpu`` (host clock, which is the device's on a CPU), ``gpu`` (device
#: time: TensorRT's IProfiler), ``host_launch`` (host-side enqueue times of a GPU provider: ONNX Runtime's CUDA
#: and TensorRT providers; never placed on the roofline) or ``host_synchronized`` (host clock around a layer
#: followed by a device synchronize: torch:cuda; GPU time plus launch latency).
TimeSource = Literal["cpu", "gpu", "host_launch", "host_synchronized"]
TIME_SOURCES: tuple[str, ...] = get_args(TimeSource)
#: The columns of a stored breakdown's rows (``Record.layers``), in order.
LayerColumn = Literal["name", "kind", "op_type", "group", "depthwise", "time_ms", "flops", "bytes", "onnx_nodes"]
LAYER_COLUMNS: tuple[LayerColumn, ...] = get_args(LayerColumn)
#: The breakdown versions this hwprofile reads: 1 (hwprofile measured its end-to-end interleaved with the profiled
#: runs; that figure is not read) and 2 (separate phases: ``end_to_end_ms`` is the clean latency).
LAYER_VERSIONS = (1, 2)
LAYER_VERSION = 2
MAX_LAYER_ROWS = 100_000


class LayerRow(_Model):
    """One timed layer: its time and the counts of the ONNX nodes it ran (flops = multiply-adds, whole batch)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)  # derived report fields are dropped

    name: Text  # as the runner names it (an ONNX graph may leave nodes unnamed)
    kind: LayerKind
    op_type: Text | None = None
    group: PositiveInt | None = None
    depthwise: Flag = False
    time_ms: NonNegative
    flops: Count | None = 0
    bytes: Count | None = None
    onnx_nodes: Annotated[list[Text], Field(max_length=MAX_LAYER_ROWS)] = Field(default_factory=list)
    median_ms: NonNegative | None = None  # per layer over all profiled runs (time_ms: over the typical ones)
    onnx_ops: Annotated[list[Text], Field(max_length=MAX_LAYER_ROWS)] = Field(default_factory=list)
    provider: Text | None = None  # ONNX Runtime's execution provider of the node
    ort_op: Text | None = None


class LayerBreakdown(_Model):
    """A record's per-layer breakdown as stored in a profile (``Record.layers``): rows as lists of
    :data:`LAYER_COLUMNS`, the clean latency of the same child, the profiled runs and the peaks it was
    measured against. ``error`` (with no rows) says why per-layer times are missing; the record's own timing
    stands."""

    model_config = ConfigDict(**_STRICT, frozen=True)

    version: Literal[1, 2]
    method: Text = ""
    iterations: Count | None = None
    time_source: TimeSource | None = None
    end_to_end_ms: Positive | None = None  # the clean latency measured alone in the same child, around profiling
    clean_after_ms: Positive | None = None  # the last clean block's median, after profiling
    rounds: Count | None = None  # rounds of profiled runs, each between two blocks of clean runs
    clean_blocks_ms: Annotated[list[Positive], Field(max_length=64)] | None = None  # each clean block's median
    profiled_run_ms: NonNegative | None = None  # a typical profiled run, profiler included
    unprofiled_ms: NonNegative | None = None  # version 1 only: unprofiled runs interleaved with profiled ones
    element_bytes: PositiveInt | None = None
    foreign_cpu_cores: NonNegative | None = None  # other load on the CPU while the layers were profiled
    peaks: PeaksDict | None = None
    notes: Annotated[list[Text], Field(max_length=64)] = Field(default_factory=list)
    error: Text | None = None
    columns: list[LayerColumn] = Field(default_factory=lambda: list(LAYER_COLUMNS))
    rows: Annotated[list[LayerRow], Field(max_length=MAX_LAYER_ROWS)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _rows_as_dicts(cls, data: Any) -> Any:
        """Stored rows are lists in the order of ``columns``; each becomes a dict (a wrong length is an error)."""
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            return data
        cols = data.get("columns", list(LAYER_COLUMNS))
        if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols) or len(set(cols)) != len(cols):
            return data  # the field's own validation names the problem
        rows = []
        for i, row in enumerate(data["rows"]):
            if isinstance(row, list):
                if len(row) != len(cols):
                    raise ValueError(f"rows[{i}] has {len(row)} values for {len(cols)} columns")
                row = dict(zip(cols, row))
            rows.append(row)
        return {**data, "rows": rows}

    @model_validator(mode="after")
    def _consistent(self) -> "LayerBreakdown":
        for need in ("name", "kind", "time_ms"):
            if need not in self.columns:
                raise ValueError(f"columns lack {need!r}")
        if any(r.kind == "gap" for r in self.rows):
            raise ValueError("a stored breakdown holds no gap row (reports derive it)")
        return self

    def to_dict(self) -> dict:
        """The stored (compact) form: rows as lists of :data:`LAYER_COLUMNS`."""
        out = self.model_dump(mode="json", exclude_none=True, exclude={"rows", "columns"})
        out["columns"] = list(LAYER_COLUMNS)
        out["rows"] = [[_plain_cell(getattr(r, c)) for c in LAYER_COLUMNS] for r in self.rows]
        return out

    def row_dicts(self) -> list[dict]:
        """Every row as a plain dict (all fields)."""
        return [r.model_dump(mode="json") for r in self.rows]


def _plain_cell(value: Any) -> Any:
    return round(value, 5) if isinstance(value, float) else list(value) if isinstance(value, (list, tuple)) else value


class RecordKey(NamedTuple):
    """What identifies a record in a profile: the device it was measured on, then its configuration (the
    :attr:`identity` two devices' records are joined on). A tuple: it compares and hashes as one."""

    device_id: str
    model: str
    strategy: str | None
    scale: float
    batch: int
    runner: str
    precision: Precision
    mode: Mode

    @property
    def identity(self) -> tuple[str, str | None, float, int, str, Precision, Mode]:
        """The configuration without the device: model, strategy, scale, batch, runner, precision, mode."""
        return (self.model, self.strategy, self.scale, self.batch, self.runner, self.precision, self.mode)


#: Record fields shared between branches that are left out of the file when unset.
OPTIONAL_FIELDS = ("quality", "quality_reasons", "layers", "prepare", "energy")


class Record(_Model):
    """One measured configuration on one device; counts are per image (flops = multiply-adds)."""

    model_config = ConfigDict(**_STRICT, frozen=True)

    device_id: Name
    model: Name  # zoo base name, or the file name of an ONNX model
    strategy: Annotated[str, Strict(), Field(min_length=1, max_length=64)] | None
    scale: Positive
    batch: PositiveInt
    runner: Name  # backend:provider, e.g. ort:cpu
    precision: Precision
    mode: Mode
    resolution: Count
    flops: Count | None
    params: Count | None
    acts: Count | None
    status: Status
    reason: Text | None = None
    latency: LatencyStats | None = None
    throughput: Throughput | None = None
    memory: dict[Name, MemoryReading] = Field(default_factory=dict)
    settings: RunnerSettings = Field(default_factory=RunnerSettings)
    source: Source = "zoo"
    measured_utc: Text = ""
    quality: Quality | None = None  # issue 12: clean | noisy | disturbed
    quality_reasons: list[Text] = Field(default_factory=list)
    layers: LayerBreakdown | None = None  # issue 13: compact per-layer breakdown (typed since issue 22)
    prepare: dict[str, Any] | None = None  # issue 10: how the runner's input was made
    energy: Energy | None = None  # issue 26: joules per image and mean watts, or why there is no reading

    @model_validator(mode="after")
    def _imported_says_so(self) -> "Record":
        """An imported record is never mistaken for a measurement: its source and its runner both say so."""
        if (self.source == "imported") != self.runner.startswith(IMPORTED_RUNNER_PREFIX):
            raise ValueError(f"source {self.source!r} and runner {self.runner!r} disagree: an imported record "
                             f"has source 'imported' and a runner named {IMPORTED_RUNNER_PREFIX}..., and no "
                             "other record does")
        return self

    @property
    def imported(self) -> bool:
        """True for a row of someone else's table (``hwprofile import``), False for hwprofile's own measurement."""
        return self.source == "imported"

    def key(self) -> RecordKey:
        return RecordKey(self.device_id, self.model, self.strategy, float(self.scale), int(self.batch),
                         self.runner, self.precision, self.mode)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median_ms(self) -> float | None:
        return None if self.latency is None else self.latency.median_ms

    @property
    def label(self) -> str:
        """Short display name: ``EfficientNet-B0 dWr x4``."""
        return scaled_label(self.model, self.strategy, self.scale)

    def memory_mb(self) -> tuple[float | None, str | None]:
        """The record's memory reading by :data:`MEMORY_PREFERENCE`: (MB, reading name), or (None, None)."""
        name = preferred_memory(self.memory)
        return (None, None) if name is None else (self.memory[name].value_mb, name)

    @property
    def foreign_load(self) -> float | None:
        """Most CPU cores other processes kept busy during the measurement (None if not recorded)."""
        values = self.settings.foreign_cpu_cores or []
        return max(values) if values else None

    def to_dict(self) -> dict:
        out = self.model_dump(mode="json", exclude={"latency", "throughput", "memory", "settings", *OPTIONAL_FIELDS})
        out["latency"] = self.latency.to_dict() if self.latency else None
        out["throughput"] = self.throughput.to_dict() if self.throughput else None
        out["memory"] = {k: v.to_dict() for k, v in self.memory.items()}
        out["settings"] = self.settings.to_dict()
        order = list(type(self).model_fields)
        out = {k: out[k] for k in order if k in out}
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value not in (None, [], {}):
                out[name] = value.to_dict() if isinstance(value, _Model) else value
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "record") -> "Record":
        """Validate ``data``; a problem is one SchemaError line naming the record and the field."""
        return super().from_dict(data, where)

    def replace(self, **changes: Any) -> "Record":
        """A copy with ``changes`` applied and validated."""
        return type(self).from_dict({**self.to_dict(), **{k: _plain(v) for k, v in changes.items()}})


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.to_dict() if hasattr(value, "to_dict") else value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("constrained-str", "constrained-int", "constrained-float", "list[...]", "float", "int",
                      "str", "bool", "dict[...]", "function-after[...]") or str(part).startswith(("list[", "dict[")):
            continue  # pydantic's union-branch names, not fields
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def describe_error(exc: ValidationError, prefix_field: str = "") -> str:
    """One line: ``field 'latency.median_ms': Input should be a valid number (got '8.6')`` (+ how many more)."""
    return describe_errors(exc.errors(include_url=False), prefix_field)


def describe_errors(errors: Sequence[Mapping[str, Any]], prefix_field: str = "") -> str:
    """:func:`describe_error` of a validation error's list of errors (``ValidationError.errors()``)."""
    first = errors[0]
    missing = [e for e in errors if e["type"] == "missing" and tuple(e["loc"])[:-1] == tuple(first["loc"])[:-1]]
    if first["type"] == "missing" and len(missing) > 1:
        parent = _loc(tuple(first["loc"])[:-1])
        where = "" if parent == "(top level)" else f"{parent!r} "
        names = [str(e["loc"][-1]) for e in missing]
        rest = len(errors) - len(missing)
        return f"{where}lacks fields {names}" + (f" (and {rest} more problems)" if rest else "")
    field = _loc(tuple(first["loc"]))
    if prefix_field:
        field = f"{prefix_field}.{field}" if field != "(top level)" else prefix_field
    got = "" if first["type"] in ("missing", "value_error") else f" (got {clip(repr(first.get('input')))})"
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
    msg = str(first["msg"]).replace("\n", " ").removeprefix("Value error, ")
    if first["type"] == "value_error" and field == "(top level)":
        return f"{msg}{more}"
    return f"field {field!r}: {msg}{got}{more}"


def record_where(index: int, raw: Any) -> str:
    """``record 3 (EfficientNet-B0 dWr x4 b8 ort:cpu)``, as much of the label as the raw data allows."""
    if not isinstance(raw, dict):
        return f"record {index}"
    model, strategy, scale, batch, runner = (raw.get(k) for k in ("model", "strategy", "scale", "batch", "runner"))
    parts = []
    if isinstance(model, str):
        label = model[:60]
        if isinstance(strategy, str) and isinstance(scale, (int, float)) and not isinstance(scale, bool):
            label = scaled_label(label, strategy[:20], scale)
        parts.append(label)
    if isinstance(batch, int) and not isinstance(batch, bool):
        parts.append(f"b{batch}")
    if isinstance(runner, str):
        parts.append(runner[:30])
    return f"record {index}" + (f" ({' '.join(parts)})" if parts else "")
