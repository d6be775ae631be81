"""Join profiles from several machines (or runs) into one: the schema holds several devices.

Identical records are kept once. Two different records with the same identity (device included)
are a conflict, as are two fingerprints of one device id that differ beyond volatile fields
(free memory, times, host names) and measured readings (peaks: the newer reading is kept, and a note
says so); ``prefer="newer"`` resolves both in favour of the later one; ``prefer="cleaner"`` keeps
the record of better quality (clean, then noisy, then disturbed, then one that is not ok;
:mod:`hwprofile.profile._quality`), the later one between equals, and the newer fingerprint.
Gate calibrations (A/A sessions) of every input are kept, each session once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from hwprofile.analysis import stable_fingerprint
from hwprofile.errors import ConfigError
from hwprofile.gate import merge_gates
from hwprofile.profile import Device, Profile, Record, RecordKey, quality_of
from hwprofile.zoo import scaled_label

PREFER = ("newer", "cleaner")
#: quality from best to worst; a record that is not ok comes last
_RANK = {"clean": 0, "noisy": 1, "disturbed": 2, None: 3}


@dataclass(frozen=True)
class MergeResult:
    profile: Profile
    notes: tuple[str, ...]
    sources: dict  # device_id -> [file names]


#: fingerprint sections that hold readings taken on the machine (its measured peaks), not what identifies it: two
#: profiles of one machine measure slightly different peaks, and merge keeps the newer reading and says so
READINGS = ("peaks",)


def _stable(fp: Device) -> dict:
    """A fingerprint without its volatile fields (its bookkeeping, hwprofile.analysis._comparability)."""
    return stable_fingerprint(fp.fingerprint())


def _split(fp: Device) -> tuple[dict, dict]:
    """(what identifies the device, what was measured on it) of a fingerprint's stable fields."""
    stable = _stable(fp)
    readings = {k: v for k, v in stable.items() if k.split(".")[0] in READINGS}
    return {k: v for k, v in stable.items() if k not in readings}, readings


def _newer(a: Record, b: Record) -> Record:
    return b if (b.measured_utc or "") >= (a.measured_utc or "") else a


def _rank(r: Record) -> int:
    q = quality_of(r)
    return _RANK[None if q is None else q.quality]


def _cleaner(a: Record, b: Record) -> Record:
    """The record of better quality; the newer of two equally clean ones."""
    if _rank(a) != _rank(b):
        return a if _rank(a) < _rank(b) else b
    return _newer(a, b)


def _describe(key: RecordKey) -> str:
    dev, model, strategy, s, batch, runner, precision, mode = key
    label = scaled_label(model, strategy, s)
    return f"{dev} {label} b{batch} {runner} {precision} {mode}"


def merge(named: Sequence[tuple[str, Profile]], prefer: str | None = None) -> MergeResult:
    """One profile holding every device and record of ``named`` (name, profile) pairs."""
    if prefer is not None and prefer not in PREFER:
        raise ConfigError(f"--prefer {prefer!r}: expected one of {', '.join(PREFER)}")
    if len(named) < 2:
        raise ConfigError("merge needs at least two profiles")
    devices: dict[str, Device] = {}
    stamps: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    notes: list[str] = []
    kept_from: dict[str, str] = {}  # device id -> the input whose fingerprint is kept
    records: dict[RecordKey, Record] = {}
    conflicts: list[RecordKey] = []
    replaced = 0
    for name, p in named:
        stamp = p.updated_utc or p.created_utc or ""
        for dev, fp in p.devices.items():
            sources.setdefault(dev, []).append(name)
            if dev in devices:
                (ident, readings), (ident_new, readings_new) = _split(devices[dev]), _split(fp)
                if ident != ident_new:
                    if prefer is None:
                        raise ConfigError(f"device {dev} has different fingerprints in {sources[dev][0]} and {name} "
                                          "(library versions or hardware differ); pass --prefer newer to keep the "
                                          "newer")
                    if stamp < stamps[dev]:
                        continue
                    notes.append(f"device {dev}: kept the fingerprint of {name} (newer)")
                elif readings != readings_new:
                    older, newer = (name, kept_from[dev]) if stamp < stamps[dev] else (kept_from[dev], name)
                    notes.append(f"device {dev}: measured peaks differ between {older} and {newer}: kept those of "
                                 f"{newer} (newer)")
                    if stamp < stamps[dev]:
                        continue
            devices[dev], stamps[dev], kept_from[dev] = fp, stamp, name
        for r in p.records:
            k = r.key()
            if k in records and records[k].to_dict() != r.to_dict():
                if prefer is None:
                    conflicts.append(k)
                    continue
                r = _cleaner(records[k], r) if prefer == "cleaner" else _newer(records[k], r)
                replaced += 1
            records[k] = r
    if conflicts:
        raise ConfigError(f"{len(conflicts)} records differ between the inputs for the same identity, e.g. "
                          f"{_describe(conflicts[0])}; pass --prefer newer to keep the later measurement, or "
                          "--prefer cleaner to keep the cleaner one")
    if replaced:
        kept = ("the cleaner measurement (the newer of equals)" if prefer == "cleaner"
                else "the newer measurement")
        notes.append(f"{replaced} records measured in more than one input: kept {kept}")
    sweeps = list({json.dumps(s, sort_keys=True, default=str): s for _, p in named for s in p.sweeps}.values())
    created = min((p.created_utc for _, p in named if p.created_utc), default="")
    merged = Profile(devices=devices, sweeps=sweeps, records=list(records.values()),
                     gate=merge_gates(p.gate for _, p in named), **({"created_utc": created} if created else {}))
    return MergeResult(merged, tuple(notes), sources)
