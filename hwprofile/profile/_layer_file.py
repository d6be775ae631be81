"""The standalone per-layer file (``hwprofile layers --out``): a typed model with its own schema version.

Schema ``hwprofile.analysis._layers`` version 1 (documented in docs/layers.md)::

    {"schema": "hwprofile.layers", "schema_version": 1, "hwprofile_version": "...",
     "model": "...", "runner": "...", "device": "...", "batch": 1, "precision": "fp32",
     "end_to_end_ms": ..., "clean_after_ms": ..., "profiled_run_ms": ..., "latency_median_ms": ...,
     "time_source": "cpu", "method": "...", "iterations": 30, "element_bytes": 4, "peaks": {...},
     "rows": [{"name", "kind", "op_type", "group", "depthwise", "time_ms", "flops", "bytes", "onnx_nodes", ...}],
     ... derived fields of the report (intensity, bound, roof_share, summary, notes), which readers recompute}

Files written before the schema existed (no ``"schema"``, but ``"runner"`` and ``"rows"``) are read as version 0.
Reading goes through the profiles' guarded parser (standard JSON only, bounded nesting and size); every
problem is one :class:`~hwprofile.errors.SchemaError` line naming the field. The derived numbers a file holds are
never trusted: readers rebuild the report from its rows and peaks (:func:`hwprofile.analysis._layers.file_report`).
"""

from __future__ import annotations

import os
from typing import Any, Final, Literal

from pydantic import ConfigDict, Field, ValidationError

from hwprofile._version import __version__
from hwprofile.errors import SchemaError
from hwprofile.profile._profile import check_header, read_json
from hwprofile.profile._records import (
    LAYER_VERSION,
    Count,
    LayerBreakdown,
    LayerRow,
    Name,
    NonNegative,
    PeaksDict,
    Positive,
    PositiveInt,
    Precision,
    Text,
    TimeSource,
    _Model,
    describe_error,
)

SCHEMA: Final = "hwprofile.layers"
SCHEMA_VERSION: Final = 1
#: versions this hwprofile reads (0: files written before the schema existed)
READABLE_VERSIONS = (0, 1)


class LayersFile(_Model):
    """A saved per-layer report: what was measured (the breakdown's fields) and for which model and runner."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, populate_by_name=True, frozen=True)

    schema_: Literal["hwprofile.layers"] = Field(SCHEMA, alias="schema")
    schema_version: Literal[0, 1] = SCHEMA_VERSION
    model: Name
    runner: Name
    device: Text
    batch: PositiveInt
    precision: Precision = "fp32"
    end_to_end_ms: Positive | None = None
    clean_after_ms: Positive | None = None
    rounds: Count | None = None
    clean_blocks_ms: list[Positive] | None = Field(None, max_length=64)
    profiled_run_ms: NonNegative | None = None
    latency_median_ms: Positive | None = None
    time_source: TimeSource | None = None
    method: Text = ""
    iterations: Count | None = None
    element_bytes: PositiveInt | None = None
    peaks: PeaksDict | None = None
    rows: list[LayerRow] = Field(default_factory=list, max_length=100_000)

    def breakdown(self) -> LayerBreakdown:
        """The measured part as a breakdown (gap rows, which reports derive, are left out)."""
        rows = [r for r in self.rows if r.kind != "gap"]
        legacy = self.schema_version == 0  # measured interleaved: its end-to-end is not the clean latency
        return LayerBreakdown(version=1 if legacy else LAYER_VERSION, method=self.method, iterations=self.iterations,
                              time_source=self.time_source, end_to_end_ms=None if legacy else self.end_to_end_ms,
                              unprofiled_ms=self.end_to_end_ms if legacy else None,
                              clean_after_ms=self.clean_after_ms, rounds=self.rounds,
                              clean_blocks_ms=self.clean_blocks_ms, profiled_run_ms=self.profiled_run_ms,
                              element_bytes=self.element_bytes, peaks=self.peaks, rows=rows)


def header() -> dict[str, Any]:
    """The fields that make a report dict a version-1 layers file."""
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "hwprofile_version": __version__}


def from_data(data: Any, origin: str = "layers file") -> LayersFile:
    """Validate parsed JSON as a layers file; every problem is one SchemaError line."""
    if isinstance(data, dict) and "schema" not in data and "rows" in data and "runner" in data:
        data = {**data, "schema": SCHEMA, "schema_version": 0}  # written before the schema existed
    check_header(data, SCHEMA, READABLE_VERSIONS, origin, "a layers file")
    try:
        return LayersFile.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(f"{origin}: {describe_error(exc)}") from None


def load(path: str | os.PathLike) -> LayersFile:
    """Read and validate a layers file (see the module docstring)."""
    return from_data(read_json(path, "layers file"), origin=f"layers file {str(path)!r}")
