"""Device profiles: versioned JSON holding fingerprints, sweep configs and one record per result.

Schema (``schema_version`` 1, documented in ``profiles/README.md``)::

    {"schema": "hwprofile.profile", "schema_version": 1, "hwprofile_version": "...",
     "created_utc": "...", "updated_utc": "...",
     "devices": {"<device_id>": {fingerprint...}},
     "sweeps": [{sweep configuration...}],
     "records": [{record...}],
     "gate": {"<device_id>": {"sessions": [...], "thresholds": {...}}}}   # optional: A/A calibration

A record's identity is (device_id, model, strategy, scale, batch, runner, precision, mode).
Files are written atomically (temp file + rename), so a killed writer never leaves a broken file.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputFileError, SchemaError

SCHEMA = "hwprofile.profile"
SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "crashed", "timeout", "unsupported", "failed", "skipped")

Key = tuple[str, str, str | None, float, int, str, str, str]


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Record:
    """One measured configuration on one device; counts are per image (flops = multiply-adds)."""

    device_id: str
    model: str  # zoo base name, or the file name of an ONNX model
    strategy: str | None
    scale: float
    batch: int
    runner: str  # backend:provider, e.g. ort:cpu
    precision: str  # fp32 | fp16
    mode: str  # infer | train
    resolution: int
    flops: int | None
    params: int | None
    acts: int | None
    status: str
    reason: str | None = None
    latency: dict | None = None  # LatencyStats.to_dict(): *_ms statistics + raw samples_ms
    throughput: dict | None = None  # {"samples_per_s": ..., "window_s": ..., "iterations": ...}
    memory: dict = field(default_factory=dict)  # name -> {"value_mb": x, "definition": "..."}
    settings: dict = field(default_factory=dict)  # threads, timing method, providers, ...
    source: str = "zoo"  # zoo | onnx
    measured_utc: str = ""
    layers: dict | None = None  # compact per-layer breakdown (hwprofile.layers.compact), from run --layers

    def key(self) -> Key:
        return (self.device_id, self.model, self.strategy, float(self.scale), int(self.batch),
                self.runner, self.precision, self.mode)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def median_ms(self) -> float | None:
        return None if not self.latency else self.latency.get("median_ms")

    @property
    def label(self) -> str:
        """Short display name: ``EfficientNet-B0 dWr x4``."""
        return self.model if not self.strategy else f"{self.model} {self.strategy} x{self.scale:g}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Record":
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.name not in data and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
        if missing:
            raise SchemaError(f"record lacks fields {missing}")
        if data["status"] not in STATUSES:
            raise SchemaError(f"record has unknown status {data['status']!r}; expected one of {STATUSES}")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Profile:
    """Fingerprints, sweep configurations and records of one or more devices."""

    devices: dict[str, dict] = field(default_factory=dict)
    sweeps: list[dict] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    created_utc: str = field(default_factory=utc_now)
    updated_utc: str = ""
    gate: dict[str, dict] = field(default_factory=dict)  # device_id -> A/A calibration (hwprofile.calibration)

    # ------------------------------------------------------------------ access
    def by_key(self) -> dict[Key, Record]:
        return {r.key(): r for r in self.records}

    def ok_records(self) -> list[Record]:
        return [r for r in self.records if r.ok and r.median_ms]

    def upsert(self, record: Record) -> None:
        """Add ``record``, replacing an earlier one with the same identity."""
        self.records = [r for r in self.records if r.key() != record.key()] + [record]

    def to_pandas(self):
        """One row per record: identity, counts, status and latency/throughput summaries (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            from .errors import EnvironmentProblem

            raise EnvironmentProblem("Profile.to_pandas needs pandas: pip install 'hwprofile[plot]'") from None
        rows = []
        for r in self.records:
            row = {k: v for k, v in r.to_dict().items() if k not in ("latency", "throughput", "memory", "settings")}
            lat = r.latency or {}
            row.update({k: v for k, v in lat.items() if k not in ("samples_ms", "medians_ms", "median_ci_ms")})
            row["samples_per_s"] = (r.throughput or {}).get("samples_per_s")
            row.update({name: m.get("value_mb") for name, m in r.memory.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    # --------------------------------------------------------------- (de)code
    def to_dict(self) -> dict:
        from . import __version__

        out = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "hwprofile_version": __version__,
               "created_utc": self.created_utc, "updated_utc": self.updated_utc or utc_now(),
               "devices": self.devices, "sweeps": self.sweeps,
               "records": [r.to_dict() for r in self.records]}
        return {**out, "gate": self.gate} if self.gate else out

    @classmethod
    def from_dict(cls, data: Any, origin: str = "profile") -> "Profile":
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise SchemaError(f"{origin} is not an hwprofile profile (no \"schema\": \"{SCHEMA}\")")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SchemaError(f"{origin} has schema version {version!r}; this hwprofile reads version "
                              f"{SCHEMA_VERSION} (upgrade hwprofile for newer files)")
        try:
            records = [Record.from_dict(r) for r in data["records"]]
            gate = data.get("gate", {})
            if not isinstance(gate, dict):
                raise TypeError(f"\"gate\" must be an object, not {type(gate).__name__}")
            return cls(devices=dict(data["devices"]), sweeps=list(data["sweeps"]), records=records,
                       created_utc=data.get("created_utc", ""), updated_utc=data.get("updated_utc", ""),
                       gate=dict(gate))
        except SchemaError as exc:
            raise SchemaError(f"{origin}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"{origin} does not follow schema version {SCHEMA_VERSION}: {exc!r}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Profile":
        """Read and validate a profile; every problem is a one-line InputFileError/SchemaError."""
        p = Path(path)
        if not p.is_file():
            raise InputFileError(f"profile {str(p)!r} does not exist (expected a JSON file written by hwprofile)")
        try:
            data = json.loads(p.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError(f"profile {str(p)!r} is not valid JSON ({exc.__class__.__name__}: {exc})") from None
        except OSError as exc:
            raise InputFileError(f"cannot read profile {str(p)!r}: {exc.strerror}") from None
        return cls.from_dict(data, origin=f"profile {str(p)!r}")

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: a reader (or a crash) never sees a half-written file."""
        self.updated_utc = utc_now()
        return atomic_write_json(Path(path), self.to_dict())


def atomic_write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
