"""Public benchmark tables as profiles (``hwprofile import``): a CSV of someone else's measurements becomes a
profile whose records say they are imported.

A table is read with a column mapping (:data:`FIELDS`: model, batch, resolution, latency or samples/s,
flops, params, acts, each with its unit) or a preset (:data:`PRESETS`: ``timm`` for the
``results/benchmark-infer-*.csv`` files of huggingface/pytorch-image-models). Every problem with the file
is one :class:`~hwprofile.errors.InputFileError` line naming the file, the line and the column: a file
that is missing, empty, too large (more than :data:`MAX_ROWS` rows or :data:`MAX_BYTES` bytes) or not
UTF-8 CSV; missing columns; cells that are not the numbers they should be; two rows for one (model,
resolution, batch).

Each kept row becomes a :class:`~hwprofile.profile.Record` with ``source`` ``"imported"`` and runner
``imported:<preset>`` (or ``imported:csv``): the table's latency (``latency.timing_method`` says which figure
it is), throughput and counts, and in ``settings.imported`` the row's line and, for a model that is a zoo
model (:mod:`hwprofile.zoo._timm`), hwprofile's own counts of it at the row's resolution. The device's
fingerprint holds the source: file name, sha256, preset, the columns used, the filters and how many rows
each kept. Imported records carry one figure per row (no repeats, no spread): every fit weighs them alike.

Filters (:class:`TableFilter`): model name patterns, timm families (``cnn``: :func:`hwprofile.zoo.is_cnn`)
and the batch size (``main``: the table's most common batch).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hwprofile.errors import ConfigError, InputFileError, clip
from hwprofile.profile._profile import Profile
from hwprofile.profile._records import (
    IMPORTED_RUNNER_PREFIX,
    INT64_MAX,
    PRECISIONS,
    Device,
    LatencyStats,
    Record,
    Throughput,
)
from hwprofile.zoo import CNN_FAMILIES, families, family, is_cnn, zoo_counts
from hwprofile.zoo import source as timm_source

#: the most rows a table may have (timm's files have about 1,600)
MAX_ROWS = 100_000
#: the largest table read, in bytes
MAX_BYTES = 64 << 20
#: the largest cell, in characters (csv's own limit is 128 KiB)
MAX_CELL = 4096

#: the largest value of each quantity (counts fit in 64 bits; latencies and throughputs stay finite)
LIMITS: dict[str, float] = {"batch": 1 << 20, "resolution": 1 << 16, "flops": INT64_MAX, "params": INT64_MAX,
                            "acts": INT64_MAX, "latency_ms": 1e12, "samples_per_s": 1e12}
#: the longest model name
MAX_NAME = 200

#: field -> (what it fills, factor to hwprofile's unit, what a cell must be)
FIELDS: dict[str, tuple[str, float, str]] = {
    "model": ("model", 1.0, "a model name"),
    "batch": ("batch", 1.0, "an integer >= 1"),
    "resolution": ("resolution", 1.0, "an integer >= 1 (input height = width, pixels)"),
    "latency_ms": ("latency_ms", 1.0, "a number > 0 (milliseconds per batch)"),
    "latency_s": ("latency_ms", 1000.0, "a number > 0 (seconds per batch)"),
    "samples_per_s": ("samples_per_s", 1.0, "a number > 0 (images per second)"),
    "flops": ("flops", 1.0, "a number >= 0 (multiply-adds per image)"),
    "flops_m": ("flops", 1e6, "a number >= 0 (millions of multiply-adds per image)"),
    "flops_g": ("flops", 1e9, "a number >= 0 (billions of multiply-adds per image, GMACs)"),
    "params": ("params", 1.0, "a number >= 0"),
    "params_m": ("params", 1e6, "a number >= 0 (millions)"),
    "acts": ("acts", 1.0, "a number >= 0 (activations per image)"),
    "acts_m": ("acts", 1e6, "a number >= 0 (millions of activations per image)"),
}
TARGETS = ("model", "batch", "resolution", "latency_ms", "samples_per_s", "flops", "params", "acts")


@dataclass(frozen=True)
class Preset:
    """A known table layout: its columns, what its latency figure is, and its counting conventions."""

    name: str
    columns: Mapping[str, str]
    latency_figure: str
    conventions: str


PRESETS: dict[str, Preset] = {
    "timm": Preset(
        name="timm",
        columns={"model": "model", "resolution": "infer_img_size", "latency_ms": "infer_step_time",
                 "samples_per_s": "infer_samples_per_sec", "batch": "infer_batch_size", "params_m": "param_count",
                 "flops_g": "infer_gmacs", "acts_m": "infer_macts"},
        latency_figure="timm benchmark.py infer_step_time: mean ms per batch over 40 steps after 10 warm-up steps",
        conventions="timm benchmark.py: infer_gmacs and infer_macts are fvcore FlopCountAnalysis and "
                    "ActivationCountAnalysis of one image (multiply-adds of conv/linear/matmul plus 2 per "
                    "batch-norm element and 1 per adaptive-pool input; outputs of conv/linear/matmul), rounded "
                    "to 0.01 G / 0.01 M; param_count in millions, rounded to 0.01"),
}


@dataclass(frozen=True)
class TableFilter:
    """Which rows to keep: name patterns (fnmatch, on the name without a pretrained tag), timm families
    (``cnn`` or family names) and one batch size (an integer or ``"main"``)."""

    models: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    batch: int | str | None = None

    def to_dict(self) -> dict:
        out: dict = {}
        for k in ("models", "exclude", "families"):
            if getattr(self, k):
                out[k] = list(getattr(self, k))
        if self.batch is not None:
            out["batch"] = self.batch
        return out


@dataclass(frozen=True)
class Row:
    """One parsed table row, in hwprofile's units."""

    line: int
    model: str
    batch: int
    resolution: int | None
    latency_ms: float
    samples_per_s: float | None
    flops: int | None
    params: int | None
    acts: int | None


@dataclass(frozen=True)
class ImportResult:
    """The profile, the fingerprint's ``imported`` section, and per zoo-mapped record its counts beside
    hwprofile's."""

    profile: Profile
    source: dict
    counts: tuple[dict, ...] = field(default=())

    @property
    def records(self) -> list[Record]:
        return list(self.profile.records)


# ------------------------------------------------------------------------------------------------ reading

def _bad(where: str, text: str) -> InputFileError:
    return InputFileError(f"{where}: {text}")


def read_text(path: str | os.PathLike) -> tuple[str, str, int]:
    """(text, sha256, bytes) of a table file; every problem is one InputFileError line."""
    p = Path(path)
    where = f"table {str(p)!r}"
    if not p.is_file():
        raise InputFileError(f"{where} does not exist (expected a CSV file)")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise _bad(where, f"is {size >> 20} MiB; tables larger than {MAX_BYTES >> 20} MiB are not read")
        data = p.read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read {where}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(where, f"is not UTF-8 text (byte {exc.start}); expected a CSV file") from None
    return text, hashlib.sha256(data).hexdigest(), len(data)


def column_map(preset: str | None, columns: Mapping[str, str] | None) -> dict[str, str]:
    """The fields to read and their columns: the preset's, with ``columns`` overriding or adding."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of: {', '.join(PRESETS)}")
    out = dict(PRESETS[preset].columns) if preset else {}
    for name, col in (columns or {}).items():
        if name not in FIELDS:
            raise ConfigError(f"unknown column field {name!r}; expected one of: {', '.join(FIELDS)}")
        if not str(col).strip():
            raise ConfigError(f"column field {name!r} names no column")
        target = FIELDS[name][0]
        out = {k: v for k, v in out.items() if FIELDS[k][0] != target or k == name}  # latency_s replaces latency_ms
        out[name] = str(col).strip()
    if "model" not in out:
        raise ConfigError("the column mapping names no model column (expected model=COLUMN or --preset timm)")
    if not {"latency_ms", "samples_per_s"} & {FIELDS[k][0] for k in out}:
        raise ConfigError("the column mapping names no latency or throughput column (expected latency_ms=, "
                          "latency_s= or samples_per_s=COLUMN)")
    return out


def _number(cell: str, fld: str, where: str, col: str) -> float | None:
    """A cell as a finite number in hwprofile's unit; None for an empty count cell (not counted)."""
    target, factor, what = FIELDS[fld]
    text = cell.strip()
    if not text and target in ("flops", "params", "acts"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and target in ("latency_ms", "samples_per_s")):
        raise InputFileError(f"{where}: column {col!r} is {_short(cell)}; expected {what}")
    if target in ("batch", "resolution") and (value != int(value) or value < 1):
        raise InputFileError(f"{where}: column {col!r} is {_short(cell)}; expected {what}")
    value *= factor
    if value > LIMITS.get(target, math.inf) or (target in ("latency_ms", "samples_per_s") and value < 1e-9):
        raise InputFileError(f"{where}: column {col!r} is {_short(cell)}, out of range; expected {what}")
    return value


def _short(text: str) -> str:
    return repr(clip(text, 30))


def parse(text: str, columns: Mapping[str, str], origin: str, batch_size: int | None = None) -> list[Row]:
    """The rows of CSV ``text`` read through ``columns`` (field -> column); ``batch_size`` fills the batch
    of a table without a batch column. One InputFileError line for the first problem."""
    where = f"table {origin!r}"
    if not text.strip():
        raise _bad(where, "is empty (expected a header row and at least one data row)")
    if "\x00" in text:
        raise _bad(where, "holds NUL bytes; expected a CSV text file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise _bad(where, f"line 1 is not CSV ({exc})") from None
    dup = sorted(h for h, n in Counter(header).items() if n > 1 and h in columns.values())
    if dup:
        raise _bad(where, f"names column(s) {dup} more than once in its header")
    missing = [c for c in dict.fromkeys(columns.values()) if c not in header]
    if missing:
        raise _bad(where, f"lacks column(s) {missing} (its header: {', '.join(header[:12])}"
                          f"{', ...' if len(header) > 12 else ''})")
    if "batch" not in columns and batch_size is None:
        raise ConfigError("the column mapping names no batch column: add batch=COLUMN or give the batch size")
    index = {fld: header.index(col) for fld, col in columns.items()}
    rows: list[Row] = []
    seen: dict[tuple, int] = {}
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise _bad(where, f"has more than {MAX_ROWS:,} data rows; split it, or filter it before importing")
            if len(values) != len(header):
                raise _bad(where, f"line {line} has {len(values)} cells; its header has {len(header)}")
            if any(len(v) > MAX_CELL for v in values):
                raise _bad(where, f"line {line} has a cell longer than {MAX_CELL} characters")
            row = _row(values, index, columns, f"{where} line {line}", line, batch_size)
            key = (row.model, row.resolution, row.batch)
            if key in seen:
                res = "" if row.resolution is None else f" at {row.resolution} px"
                raise _bad(where, f"lines {seen[key]} and {line} both hold {row.model}{res}, batch {row.batch} "
                                  "(expected one row per model, resolution and batch)")
            seen[key] = line
            rows.append(row)
    except csv.Error as exc:
        raise _bad(where, f"line {reader.line_num} is not CSV ({exc})") from None
    if not rows:
        raise _bad(where, "has a header but no data rows")
    return rows


def _row(values: list[str], index: Mapping[str, int], columns: Mapping[str, str], where: str, line: int,
         batch_size: int | None) -> Row:
    model = values[index["model"]].strip()
    if not model or len(model) > MAX_NAME:
        raise InputFileError(f"{where}: column {columns['model']!r} is {_short(model)}; expected a model name "
                             f"(1-{MAX_NAME} characters)")
    got: dict[str, float | None] = {}
    for fld, i in index.items():
        if fld != "model":
            got[FIELDS[fld][0]] = _number(values[i], fld, f"{where} ({model[:40]})", columns[fld])
    read_batch = got.get("batch")
    batch = int(read_batch) if read_batch is not None else int(batch_size or 0)
    latency = got.get("latency_ms")
    sps = got.get("samples_per_s")
    if latency is None:
        if sps is None:  # the mapping takes a latency or a throughput column; their cells are never empty
            raise InputFileError(f"{where}: line {line} has neither a latency nor a throughput")
        latency = batch * 1000.0 / sps
    counts = {k: (int(round(v)) if (v := got.get(k)) else None) for k in ("flops", "params", "acts")}
    res = got.get("resolution")
    return Row(line, model, batch, None if res is None else int(res), float(latency), sps, **counts)


# ------------------------------------------------------------------------------------------------ filters

def main_batch(rows: Sequence[Row]) -> int:
    """The batch size most rows have (ties: the larger)."""
    counts = Counter(r.batch for r in rows)
    return max(counts, key=lambda b: (counts[b], b))


def check_families(names: Sequence[str]) -> tuple[str, ...]:
    """``cnn`` or timm family names; an unknown one is a ConfigError listing the known ones."""
    known = set(families())
    bad = [n for n in names if n != "cnn" and n not in known]
    if bad:
        raise ConfigError(f"unknown family {bad[0]!r}; expected cnn or timm families such as "
                          f"{', '.join(sorted(CNN_FAMILIES)[:8])}, ... (hwprofile/data/timm_models.json)")
    return tuple(names)


def _family_ok(name: str, wanted: Sequence[str]) -> bool:
    return any(is_cnn(name) if w == "cnn" else family(name) == w for w in wanted)


def apply_filter(rows: Sequence[Row], flt: TableFilter) -> tuple[list[Row], dict]:
    """The rows ``flt`` keeps and what each step kept and dropped (for the fingerprint and the summary)."""
    steps: dict = {"rows": len(rows)}
    kept = list(rows)
    base = (lambda r: r.model.split(".", 1)[0])
    if flt.models:
        kept = [r for r in kept if any(fnmatch.fnmatchcase(base(r), p) for p in flt.models)]
        steps["after_models"] = len(kept)
    if flt.exclude:
        kept = [r for r in kept if not any(fnmatch.fnmatchcase(base(r), p) for p in flt.exclude)]
        steps["after_exclude"] = len(kept)
    if flt.families:
        unknown = sum(1 for r in kept if family(r.model) is None)
        kept = [r for r in kept if _family_ok(r.model, flt.families)]
        steps["after_families"] = len(kept)
        if unknown:
            steps["not_in_timm_registry"] = unknown
    if flt.batch is not None:
        batch = main_batch(rows) if flt.batch == "main" else int(flt.batch)
        kept = [r for r in kept if r.batch == batch]
        steps["batch"] = batch
        steps["after_batch"] = len(kept)
    steps["kept"] = len(kept)
    return kept, steps


# ------------------------------------------------------------------------------------------------ records

_TIMM_PRECISION = {"amp": "fp16", "fp16": "fp16", "fp32": "fp32"}
_DEVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def timm_file_settings(name: str) -> dict:
    """What a timm result file's name says: precision, layout, compile, CPU or GPU."""
    tokens = Path(name).name.split(".", 1)[0].split("-")
    out: dict = {}
    prec = next((t for t in tokens if t in _TIMM_PRECISION or "bf16" in t), None)
    if prec is not None:
        out["precision_token"] = prec
    if "nhwc" in tokens:
        out["channels_last"] = True
    elif "nchw" in tokens:
        out["channels_last"] = False
    out["compile"] = "dynamo" in tokens
    out["device_type"] = "cpu" if "cpu" in tokens else "cuda"
    return out


def _precision(preset: str | None, file_name: str, precision: str | None) -> tuple[str, str]:
    """(precision, where it came from)."""
    if precision is not None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        return precision, "--precision"
    if preset == "timm":
        token = timm_file_settings(file_name).get("precision_token")
        if token in _TIMM_PRECISION:
            return _TIMM_PRECISION[token], f"file name: {token}" + (" (float16 autocast)" if token == "amp" else "")
        if token:
            raise ConfigError(f"{file_name}: precision {token!r} is not one hwprofile records "
                              f"({', '.join(PRECISIONS)}); such a table cannot be imported as it is")
    raise ConfigError(f"{file_name}: say which precision the table was measured in (--precision "
                      f"{' or '.join(PRECISIONS)})")


def _model_label(row: Row) -> str:
    return row.model if row.resolution is None else f"{row.model}@{row.resolution}"


def _record(row: Row, *, device: str, runner: str, precision: str, figure: str, like_runner: str | None,
            extra: Mapping) -> Record:
    imported: dict = {"line": row.line}
    zoo = zoo_counts(row.model, row.resolution) if row.resolution else None
    if zoo is not None:
        imported["zoo"] = zoo
        if like_runner and row.resolution == zoo["train_res"]:
            imported["joins_as"] = {"model": zoo["model"], "runner": like_runner}
    sps = row.samples_per_s if row.samples_per_s is not None else row.batch * 1000.0 / row.latency_ms
    return Record(
        device_id=device, model=_model_label(row), strategy=None, scale=1.0, batch=row.batch, runner=runner,
        precision=precision, mode="infer", resolution=row.resolution or 0, flops=row.flops, params=row.params,
        acts=row.acts, status="ok", latency=LatencyStats(median_ms=row.latency_ms, timing_method=figure),
        throughput=Throughput(samples_per_s=sps, batch=row.batch),
        settings={"imported": imported, **extra}, source="imported")


def import_table(path: str | os.PathLike, *, device_name: str, preset: str | None = None,
                 columns: Mapping[str, str] | None = None, precision: str | None = None,
                 batch_size: int | None = None, filters: TableFilter = TableFilter(),
                 like_runner: str | None = None) -> ImportResult:
    """Read a benchmark table into a profile of imported records (nothing is written).

    ``preset`` (``timm``) and/or ``columns`` ({field: column}, :data:`FIELDS`) say how to read it;
    ``precision`` is required unless the preset reads it from the file name; ``batch_size`` fills the batch
    of a table without a batch column; ``filters`` keeps some rows; ``like_runner`` names the hwprofile runner
    closest to what produced the table (timm: ``torch:cuda``/``torch:cpu`` from the file name): records of
    zoo models at their training resolution then join that runner's records in ``compare`` and ``check``,
    which refuse imported against measured records unless allowed.
    """
    if not _DEVICE_NAME.fullmatch(device_name or ""):
        raise ConfigError(f"device name {device_name!r}: expected 1-64 letters, digits, '.', '_', '+' or '-' "
                          "(e.g. rtx4090)")
    if filters.families:
        check_families(filters.families)
    if (isinstance(filters.batch, int) and filters.batch < 1) or (isinstance(filters.batch, str)
                                                                   and filters.batch != "main"):
        raise ConfigError(f"batch filter {filters.batch!r}: expected an integer >= 1 or 'main'")
    cols = column_map(preset, columns)
    text, sha, size = read_text(path)
    name = Path(path).name
    prec, prec_from = _precision(preset, name, precision)
    rows = parse(text, cols, str(path), batch_size)
    kept, steps = apply_filter(rows, filters)
    if not kept:
        raise ConfigError(f"{name}: no row is left after the filters ({_steps_text(steps)}); loosen them")
    extra: dict = {}
    if preset == "timm":
        fs = timm_file_settings(name)
        extra = {k: fs[k] for k in ("compile", "channels_last") if k in fs}
        like_runner = like_runner or f"torch:{fs['device_type']}"
    runner = IMPORTED_RUNNER_PREFIX + (preset or "csv")
    figure = ("imported: " + PRESETS[preset].latency_figure if preset
              else f"imported: column {cols.get('latency_ms') or cols.get('latency_s') or cols['samples_per_s']!r}"
                   + ("" if "latency_ms" in cols or "latency_s" in cols else " as batch / samples per second"))
    records = [_record(r, device=device_name, runner=runner, precision=prec, figure=figure,
                       like_runner=like_runner, extra=extra) for r in kept]
    src: dict = {"file": name, "sha256": sha, "bytes": size, "preset": preset, "columns": dict(cols),
                 "precision": {"value": prec, "from": prec_from}, "filters": filters.to_dict(), "rows": steps,
                 "latency_figure": figure}
    if preset:
        src["conventions"] = PRESETS[preset].conventions
    if like_runner:
        src["like_runner"] = like_runner
    if filters.families:
        src["timm_registry"] = timm_source()
    if batch_size is not None and "batch" not in cols:
        src["batch_size"] = batch_size
    device = Device(id=device_name, device=device_name, kind="imported", imported=src)
    profile = Profile(devices={device_name: device}, records=records)
    return ImportResult(profile, src, tuple(count_rows(records)))


def _steps_text(steps: Mapping) -> str:
    parts = [f"{steps['rows']} rows"]
    for key, what in (("after_models", "models"), ("after_exclude", "exclude"), ("after_families", "families"),
                      ("after_batch", "batch")):
        if key in steps:
            parts.append(f"{what}: {steps[key]}" + (f" (batch {steps['batch']})" if key == "after_batch" else ""))
    return ", ".join(parts)


def summary_text(steps: Mapping) -> str:
    """``1627 rows, families: 712, batch: 650 (batch 1024)``: what each filter kept."""
    return _steps_text(steps)


# ------------------------------------------------------------------------------------------------ counts

def imported_settings(r: Record) -> dict:
    """``settings.imported`` of a record (empty for a measured one)."""
    value = r.settings.to_dict().get("imported") if r.imported else None
    return value if isinstance(value, dict) else {}


def count_rows(records: Sequence[Record]) -> list[dict]:
    """Per imported record of a zoo model: the table's counts beside hwprofile's and their ratio."""
    out = []
    for r in records:
        zoo = imported_settings(r).get("zoo")
        if not isinstance(zoo, dict):
            continue
        row = {"model": r.model, "zoo_model": zoo.get("model"), "resolution": r.resolution,
               "train_res": zoo.get("train_res")}
        for m in ("flops", "params", "acts"):
            table, ours = getattr(r, m), zoo.get(m)
            row[f"{m}_table"], row[f"{m}_hwprofile"] = table, ours
            row[f"{m}_ratio"] = table / ours if table and ours else None
        out.append(row)
    return out


__all__ = ["FIELDS", "MAX_BYTES", "MAX_ROWS", "PRESETS", "ImportResult", "Preset", "Row", "TableFilter",
           "apply_filter", "column_map", "count_rows", "import_table", "imported_settings", "main_batch",
           "parse", "read_text", "summary_text", "timm_file_settings"]
