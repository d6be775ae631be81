"""Device profiles: versioned JSON holding fingerprints, sweep configs and one record per result.

Schema (``schema_version`` 2, documented in ``profiles/README.md``; ``profiles/schema.json`` is the JSON
Schema generated from the typed models in :mod:`hwprofile.profile._records`)::

    {"schema": "hwprofile.profile", "schema_version": 2, "hwprofile_version": "...",
     "created_utc": "...", "updated_utc": "...",
     "devices": {"<device_id>": {fingerprint..., "peaks": {...}?}},
     "sweeps": [{sweep configuration...}],
     "records": [{record...}],
     "gate": {"<device_id>": {"sessions": [...], "thresholds": {...}}}}   # optional: A/A calibration

Version 1 files are read through :func:`migrate` (see there); every save writes version 2.
A record's identity is (device_id, model, strategy, scale, batch, runner, precision, mode).
Files are written with :mod:`hwprofile.atomic`, so a killed writer never leaves a broken file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hwprofile._lazy import extra_hint, heavy
from hwprofile._version import __version__
from hwprofile.atomic import write_json
from hwprofile.errors import EnvironmentProblem, InputFileError, SchemaError, clip
from hwprofile.profile._records import (
    STATUSES,
    Device,
    Energy,
    LatencyStats,
    MemoryReading,
    Record,
    RecordKey,
    RunnerSettings,
    Text,
    Throughput,
    describe_error,
    describe_errors,
    record_where,
)
from hwprofile.profile._stats import latency_stats

SCHEMA: Final = "hwprofile.profile"
SCHEMA_VERSION: Final = 2
#: versions this hwprofile reads (older ones through :func:`migrate`)
READABLE_VERSIONS = (1, 2)
#: the deepest nesting of JSON objects and arrays a profile may have (a bound on hostile input)
MAX_DEPTH = 64
#: the largest profile file read, in bytes
MAX_BYTES = 1 << 30


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Profile(BaseModel):
    """Fingerprints, sweep configurations and records of one or more devices."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, populate_by_name=True)

    schema_: Literal["hwprofile.profile"] = Field(SCHEMA, alias="schema")
    schema_version: Literal[2] = SCHEMA_VERSION
    hwprofile_version: Text = ""
    created_utc: Text = Field(default_factory=utc_now)
    updated_utc: Text = ""
    devices: dict[Text, Device] = Field(default_factory=dict)
    sweeps: list[dict[str, Any]] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)
    gate: dict[Text, dict[str, Any]] = Field(default_factory=dict)  # device_id -> A/A calibration

    # ------------------------------------------------------------------ access
    def by_key(self) -> dict[RecordKey, Record]:
        return {r.key(): r for r in self.records}

    def ok_records(self) -> list[Record]:
        return [r for r in self.records if r.ok and r.median_ms]

    def upsert(self, record: Record) -> None:
        """Add ``record``, replacing an earlier one with the same identity."""
        self.records = [r for r in self.records if r.key() != record.key()] + [record]

    def device(self, device_id: str) -> Device:
        """The device entry of ``device_id`` (an empty one if the profile has none)."""
        return self.devices.get(device_id) or Device()

    def to_pandas(self):
        """One row per record: identity, counts, status and latency/throughput summaries (needs pandas)."""
        try:
            pd = heavy("pandas")
        except ImportError:
            raise EnvironmentProblem(f"Profile.to_pandas needs pandas: {extra_hint('plot')}") from None
        rows = []
        for r in self.records:
            row = {k: v for k, v in r.to_dict().items() if k not in ("latency", "throughput", "memory", "settings")}
            lat = r.latency.to_dict() if r.latency else {}
            row.update({k: v for k, v in lat.items() if k not in ("samples_ms", "medians_ms", "median_ci_ms")})
            row["samples_per_s"] = r.throughput.samples_per_s if r.throughput else None
            row.update({name: m.value_mb for name, m in r.memory.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    # --------------------------------------------------------------- (de)code
    def to_dict(self) -> dict:
        out = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "hwprofile_version": __version__,
               "created_utc": self.created_utc, "updated_utc": self.updated_utc or utc_now(),
               "devices": {k: d.fingerprint() for k, d in self.devices.items()}, "sweeps": self.sweeps,
               "records": [r.to_dict() for r in self.records]}
        return {**out, "gate": self.gate} if self.gate else out

    @classmethod
    def from_dict(cls, data: Any, origin: str = "profile") -> "Profile":
        """Validate (and migrate) parsed JSON; every problem is one SchemaError line."""
        check_header(data, SCHEMA, READABLE_VERSIONS, origin, "an hwprofile profile")
        data = migrate(data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SchemaError(f"{origin}: {_where(exc, data)}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Profile":
        """Read and validate a profile; every problem is a one-line InputFileError/SchemaError."""
        return cls.from_dict(read_json(path, "profile"), origin=f"profile {str(Path(path))!r}")

    def save(self, path: str | os.PathLike, *, replace: bool = True) -> Path:
        """Write atomically: a reader (or a crash) never sees a half-written file.

        ``replace=False`` refuses an existing file (the CLI's default for new outputs without ``--force``).
        """
        self.updated_utc = utc_now()
        return write_json(Path(path), self.to_dict(), replace=replace, what="profile")


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Parsed standard JSON from ``path`` (a ``what``: "profile", "layers file") through :func:`parse_json`, at
    most :data:`MAX_BYTES`; every problem is one InputFileError/SchemaError line."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{what} {str(p)!r} does not exist (expected a JSON file written by hwprofile)")
    try:
        if p.stat().st_size > MAX_BYTES:
            raise SchemaError(f"{what} {str(p)!r} is larger than {MAX_BYTES >> 20} MiB")
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{what} {str(p)!r} is not valid JSON (not UTF-8: {exc.reason})") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {what} {str(p)!r}: {exc.strerror}") from None
    return parse_json(text, f"{what} {str(p)!r}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(text: str, origin: str) -> Any:
    """Standard JSON only (no NaN/Infinity), bounded nesting; errors are one SchemaError line."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{origin} is not valid JSON ({exc.__class__.__name__}: {exc})") from None
    except ValueError as exc:
        raise SchemaError(f"{origin} is not valid JSON ({exc})") from None
    except RecursionError:
        raise SchemaError(f"{origin} nests objects and arrays too deeply to be a profile") from None


def check_header(data: Any, schema: str, versions: tuple, origin: str, what: str) -> None:
    """The guarded start of reading a versioned hwprofile file: an object with ``"schema": schema``, a
    ``schema_version`` in ``versions``, bounded nesting; every problem one SchemaError line."""
    if not isinstance(data, dict) or data.get("schema") != schema:
        raise SchemaError(f"{origin} is not {what} (no \"schema\": \"{schema}\")")
    version = data.get("schema_version")
    if isinstance(version, bool) or version not in versions:
        raise SchemaError(f"{origin} has schema version {clip(repr(version))}; this hwprofile reads versions "
                          f"{', '.join(map(str, versions))} (upgrade hwprofile for newer files)")
    check_depth(data, origin)


def check_depth(data: Any, origin: str) -> None:
    """A SchemaError when parsed JSON nests deeper than :data:`MAX_DEPTH` (a bound on hostile input)."""
    if _depth(data) > MAX_DEPTH:
        raise SchemaError(f"{origin} nests objects and arrays deeper than {MAX_DEPTH} levels")


def _depth(data: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            if d > MAX_DEPTH:
                return d
            stack.extend((v, d + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def _where(exc: ValidationError, data: dict) -> str:
    loc = tuple(exc.errors(include_url=False)[0]["loc"])
    if len(loc) >= 2 and loc[0] == "records" and isinstance(loc[1], int):
        raw = data.get("records", [])[loc[1]] if isinstance(data.get("records"), list) else None
        rest = _strip(exc, 2)
        return f"{record_where(loc[1], raw)}: {rest}"
    if len(loc) >= 2 and loc[0] in ("devices", "gate"):
        return f"{loc[0][:-1] if loc[0] == 'devices' else 'gate'} {str(loc[1])[:60]!r}: {_strip(exc, 2)}"
    return describe_error(exc)


def _strip(exc: ValidationError, n: int) -> str:
    """describe_error with the first ``n`` location parts of the first error dropped."""
    errors = exc.errors(include_url=False)
    prefix = tuple(errors[0]["loc"])[:n]
    mine: list[Mapping[str, Any]] = [{**e, "loc": tuple(e["loc"])[n:]} for e in errors
                                     if tuple(e["loc"])[:n] == prefix]
    others: list[Mapping[str, Any]] = [e for e in errors if tuple(e["loc"])[:n] != prefix]
    return describe_errors(mine + others)


# ---------------------------------------------------------------- migration
def migrate(data: dict) -> dict:
    """Version 1 -> 2 (a copy; version 2 data is returned as is).

    Version 2 differs from 1 in:
    * every device entry carries its ``id``;
    * latency statistics always carry ``max_ms`` and ``repeat_spread`` (filled from the raw samples);
    * a record pooled by ``check`` from several measurements (``pooled_processes``) states the median
      of the per-process medians, like every other record (version 1 stored the median of the pooled
      samples and copied ``noisy``/``max_ms``/``repeat_spread`` from the first measurement); its
      statistics are recomputed from its raw samples with the one statistics function;
    * optional record fields ``quality``, ``quality_reasons``, ``layers``, ``prepare``, settings
      ``executor``/``node`` and device ``peaks`` exist (absent in version 1 files).
    """
    if data.get("schema_version") != 1:
        return data
    out = dict(data)
    out["schema_version"] = SCHEMA_VERSION
    devices = data.get("devices")
    if isinstance(devices, dict):
        out["devices"] = {k: ({"id": k, **v} if isinstance(v, dict) and "id" not in v else v)
                          for k, v in devices.items()}
    records = data.get("records")
    if isinstance(records, list):
        out["records"] = [_migrate_record(r) for r in records]
    return out


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list) or not values:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]


def _migrate_record(r: Any) -> Any:
    if not isinstance(r, dict) or not isinstance(r.get("latency"), dict):
        return r
    lat = dict(r["latency"])
    runs = lat.get("samples_ms")
    runs = [_numbers(s) for s in runs] if isinstance(runs, list) else []
    runs = [s for s in runs if s]
    if runs and lat.get("pooled_processes") and all(x > 0 for s in runs for x in s):
        timing = lat.get("timing_method")
        method = timing if isinstance(timing, str) else "unknown"
        lat.update(latency_stats(runs, method).to_dict())
        return {**r, "latency": lat}
    if "max_ms" not in lat and runs:
        lat["max_ms"] = max(x for s in runs for x in s)
    medians = _numbers(lat.get("medians_ms"))
    if "repeat_spread" not in lat and medians and min(medians) > 0:
        lat["repeat_spread"] = max(medians) / min(medians) - 1
    return {**r, "latency": lat}


__all__ = ["Device", "Energy", "LatencyStats", "MemoryReading", "Profile", "Record", "RecordKey", "RunnerSettings",
           "SCHEMA", "SCHEMA_VERSION", "STATUSES", "Throughput", "migrate", "parse_json", "utc_now"]
