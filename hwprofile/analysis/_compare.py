"""Joins and ratio statistics between device profiles (pure functions: nothing here prints).

Records are joined on their identity without the device (model, strategy, scale, batch, runner,
precision, mode), so the same code compares two runs on one device and two devices.

Whether two sides may be compared at all is :mod:`hwprofile.analysis._comparability` (from what each runner
declares); :class:`Comparison` carries its findings.

Latency ratios get a seeded bootstrap confidence interval that includes the drift *between
processes*, not only the noise inside one: each side's centre is the geometric mean of its
per-process medians, and a replicate resamples those per-process medians (a process's median
already carries its own sampling noise). With few processes the bootstrap spread is too narrow by
``sqrt((k-1)/k)``, so replicates are expanded by ``sqrt(k/(k-1))``; a side whose spread is below a
device-type drift floor gets that floor, and a single-process side resamples its raw samples and
adds an assumed drift (one process cannot show drift). ``drift_floor`` is the sd of log drift:
one number for both uses, or a pair (floor for several processes, drift assumed for one).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hwprofile.analysis._comparability import ABSetting, Mismatch, comparability
from hwprofile.analysis._contrast import equal_flops
from hwprofile.analysis._follows import follows_table, is_used
from hwprofile.errors import ConfigError
from hwprofile.profile import Profile, Record, preferred_memory, quality_of
from hwprofile.vocabulary import Mode, Precision

#: a record's configuration without its device (RecordKey.identity): the fields of IDENTITY_FIELDS
Identity = tuple[str, str | None, float, int, str, Precision, Mode]
IDENTITY_FIELDS = ("model", "strategy", "scale", "batch", "runner", "precision", "mode")
DEFAULT_BOOT = 2000


def identity(r: Record) -> Identity:
    """A record's key without its device: what compare joins on.

    An imported record of a zoo model at its training resolution joins as that zoo model measured by the
    runner the table is like (``settings.imported.joins_as``, written by ``hwprofile import``), so that
    comparability can refuse the pair (imported against measured) or, when allowed, compare it.
    """
    alias = joins_as(r)
    if alias is not None:
        return (alias[0], None, 1.0, int(r.batch), alias[1], r.precision, r.mode)
    return r.key().identity


def joins_as(r: Record) -> tuple[str, str] | None:
    """(zoo model, runner) an imported record joins as, or None."""
    if not r.imported:
        return None
    alias = (r.settings.to_dict().get("imported") or {}).get("joins_as")
    if isinstance(alias, dict) and isinstance(alias.get("model"), str) and isinstance(alias.get("runner"), str):
        return alias["model"], alias["runner"]
    return None


def identity_dict(ident: Identity) -> dict:
    return dict(zip(IDENTITY_FIELDS, ident))


def runner_family(runner: str) -> str:
    """What a runner is across devices: ``ort:cpu`` and ``ort:cuda`` are both ``ort``; TensorRT stays apart."""
    backend, _, target = runner.partition(":")
    return runner if target not in ("cpu", "cuda") else backend


def cross_identity(r: Record) -> tuple:
    """The join key across devices: the runner's device part left out (CPU against GPU)."""
    ident = identity(r)
    return (*ident[:4], runner_family(ident[4]), *ident[5:])


# ----------------------------------------------------------------------------------- sides

@dataclass(frozen=True)
class Side:
    """One device's records from one profile file."""

    name: str
    device_id: str
    fingerprint: dict
    records: tuple[Record, ...]


def sides(profile: Profile, name: str) -> list[Side]:
    """One side per device that has records (a merged profile holds several)."""
    ids = list(dict.fromkeys([*profile.devices, *(r.device_id for r in profile.records)]))
    ids = [d for d in ids if any(r.device_id == d for r in profile.records)]
    multi = len(ids) > 1
    return [Side(f"{name}:{d}" if multi else name, d, profile.device(d).fingerprint(),
                 tuple(r for r in profile.records if r.device_id == d)) for d in ids]


@dataclass(frozen=True)
class Join:
    pairs: tuple[tuple[Record, Record], ...]  # (base, current), both sides' statuses as they are
    only_base: tuple[Record, ...]
    only_current: tuple[Record, ...]


def _without(key: Callable[[Record], tuple], drop: int) -> Callable[[Record], tuple]:
    """``key`` without its field at index ``drop``."""
    return lambda r: tuple(v for i, v in enumerate(key(r)) if i != drop)


def join(base: Iterable[Record], current: Iterable[Record], cross_device: bool = False,
         across: str | None = None) -> Join:
    """Pair records with the same identity; records on one side only are listed apart.

    ``cross_device`` joins ``ort:cpu`` with ``ort:cuda`` and ``torch:cpu`` with ``torch:cuda``.
    ``across`` (an identity field: ``runner``, ``precision``) joins records that differ in it, for an
    A/B comparison of that setting; each side must then hold one record per remaining identity.
    """
    key: Callable[[Record], tuple] = cross_identity if cross_device else identity
    if across is not None:
        if across not in IDENTITY_FIELDS:
            raise ConfigError(f"cannot join across {across!r}; expected one of {', '.join(IDENTITY_FIELDS)}")
        key = _without(key, IDENTITY_FIELDS.index(across))
    b, c = _keyed(base, key, across), _keyed(current, key, across)
    pairs = tuple((b[k], c[k]) for k in b if k in c)
    return Join(pairs, tuple(r for k, r in b.items() if k not in c), tuple(r for k, r in c.items() if k not in b))


def _keyed(records: Iterable[Record], key: Callable[[Record], tuple], across: str | None) -> dict:
    out: dict = {}
    for r in records:
        k = key(r)
        if across is not None and k in out:
            other = getattr(out[k], across)
            raise ConfigError(f"a side holds {r.label} b{r.batch} at two {across}s ({other} and {getattr(r, across)}); "
                              f"an A/B comparison of {across} needs one per side: pick them with "
                              f"--ab {across}=A_VALUE,B_VALUE")
        out[k] = r
    return out


def ab_sides(base: Side, cur: Side, setting: ABSetting, values: Sequence[str] = ()) -> tuple[Side, Side]:
    """The two sides of an A/B comparison of ``setting``: with ``values`` (A's and B's, e.g. torch:cpu and
    ort:cpu), each side keeps its records of that value of the setting's identity field."""
    if not values:
        return base, cur
    if setting.across is None or len(values) != 2:
        raise ConfigError(f"--ab {setting.name}=A,B names two values of a record field; only "
                          "runner and precision take them (e.g. --ab runner=torch:cpu,ort:cpu)")
    picked = []
    for side, value in zip((base, cur), values):
        records = tuple(r for r in side.records if getattr(r, setting.across) == value)
        if not records:
            have = ", ".join(sorted({str(getattr(r, setting.across)) for r in side.records}))
            raise ConfigError(f"{side.name} has no record with {setting.across} {value} (it holds: {have})")
        picked.append(Side(side.name, side.device_id, side.fingerprint, records))
    return picked[0], picked[1]


# ------------------------------------------------------------------------------ statistics

@dataclass(frozen=True)
class Ratio:
    """current / base of one metric, with its confidence interval where one can be computed."""

    metric: str  # latency | throughput | memory:<name>
    base: float | None  # None for a geometric mean
    current: float | None
    ratio: float
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    method: str = ""
    higher_is_better: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Ratio":
        return cls(**data)


def process_medians_ms(r: Record) -> list[float]:
    """Median of each process's raw samples (falls back to ``medians_ms``, then ``median_ms``)."""
    lat = r.latency
    if lat is None:
        return []
    samples = lat.processes()
    if samples:
        return [float(np.median(s)) for s in samples]
    if lat.medians_ms:
        return [float(m) for m in lat.medians_ms]
    return [float(lat.median_ms)]


def centre_ms(r: Record) -> float | None:
    """Geometric mean of the per-process medians: the statistic the ratios use."""
    m = process_medians_ms(r)
    return float(math.exp(np.mean(np.log(m)))) if m and min(m) > 0 else None


def rng_for(seed: int, ident: Any) -> np.random.Generator:
    """A generator seeded by ``seed`` and the record identity: results do not depend on order."""
    return np.random.default_rng([seed, zlib.crc32(repr(ident).encode())])


Floor = float | tuple[float, float]  # sd of log drift: one number, or (several processes, a single process)


def floors(drift_floor: Floor) -> tuple[float, float]:
    """(smallest drift sd for k >= 2 processes, drift sd assumed for a single process)."""
    if isinstance(drift_floor, (int, float)):
        return (drift_floor, drift_floor)
    several, single = drift_floor
    return (several, single)


def log_centre_replicates(values: Sequence[float], n_boot: int, rng: np.random.Generator, drift_floor: Floor,
                          samples: Sequence[float] = ()) -> np.ndarray:
    """Bootstrap replicates of the log geometric mean of per-process ``values`` (see the module docstring).

    ``samples``: the raw samples of a single process, resampled for its median when ``values``
    holds one process.
    """
    floor, single = floors(drift_floor)
    logs = np.log(np.asarray(values, dtype=float))
    k, centre = len(logs), float(np.mean(logs))
    if k >= 2:
        idx = rng.integers(0, k, size=(n_boot, k))
        reps = centre + math.sqrt(k / (k - 1)) * (logs[idx].mean(axis=1) - centre)
        floor_var = floor ** 2 / k - float(np.var(reps))
        if floor_var > 0:
            reps = reps + rng.normal(0.0, math.sqrt(floor_var), n_boot)
        return reps
    raw = np.asarray(samples, dtype=float)
    if raw.size >= 2:
        idx = rng.integers(0, raw.size, size=(n_boot, raw.size))
        reps = np.log(np.median(raw[idx], axis=1))
        reps = reps - float(np.median(reps)) + centre
    else:
        reps = np.full(n_boot, centre)
    return reps + rng.normal(0.0, single, n_boot) if single > 0 else reps


def _latency_reps(r: Record, n_boot: int, rng: np.random.Generator, drift_floor: Floor) -> np.ndarray:
    samples = (r.latency.samples_ms if r.latency and r.latency.samples_ms else [[]])[0]
    return log_centre_replicates(process_medians_ms(r), n_boot, rng, drift_floor, samples)


def _method(base: Record, cur: Record) -> str:
    k = min(len(process_medians_ms(base)), len(process_medians_ms(cur)))
    return "bootstrap over processes" if k >= 2 else "bootstrap over samples + assumed drift"


def latency_replicates(base: Record, cur: Record, *, n_boot: int = DEFAULT_BOOT, seed: int = 0,
                       drift_floor: Floor = 0.0) -> tuple[float, np.ndarray]:
    """(log ratio current/base, its bootstrap replicates)."""
    rng = rng_for(seed, identity(base))
    cb, cc = centre_ms(base), centre_ms(cur)
    if cb is None or cc is None:
        raise ValueError("latency_replicates needs a latency on both sides (has_latency)")
    lb, lc = math.log(cb), math.log(cc)
    reps = _latency_reps(cur, n_boot, rng, drift_floor) - _latency_reps(base, n_boot, rng, drift_floor)
    return lc - lb, reps


def interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of log-ratio replicates, as ratios."""
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(reps, [tail, 100 - tail])
    return math.exp(float(lo)), math.exp(float(hi))


def has_latency(r: Record) -> bool:
    return r.ok and centre_ms(r) is not None


def latency_ratio(base: Record, cur: Record, *, confidence: float = 0.95, n_boot: int = DEFAULT_BOOT,
                  seed: int = 0, drift_floor: Floor = 0.0) -> Ratio | None:
    """Latency ratio current/base with a bootstrap interval; None if a side has no latency."""
    if not (has_latency(base) and has_latency(cur)):
        return None
    point, reps = latency_replicates(base, cur, n_boot=n_boot, seed=seed, drift_floor=drift_floor)
    lo, hi = interval(reps, confidence)
    return Ratio("latency", centre_ms(base), centre_ms(cur), math.exp(point), lo, hi,
                 confidence, _method(base, cur))


def throughput_per_process(r: Record) -> list[float]:
    """Samples per second of each process (``per_repeat_samples_per_s``), else the one overall value."""
    t = r.throughput
    if t is None:
        return []
    per = [float(v) for v in t.per_repeat_samples_per_s if v]
    return per or [float(t.samples_per_s)]


def throughput_ratio(base: Record, cur: Record, *, confidence: float = 0.95, n_boot: int = DEFAULT_BOOT,
                     seed: int = 0, drift_floor: Floor = 0.0) -> Ratio | None:
    """Throughput ratio current/base (geometric means over processes), bootstrapped like latency.

    A record with one throughput window per side gets an interval from the assumed drift only.
    """
    tb, tc = throughput_per_process(base), throughput_per_process(cur)
    if not (base.ok and cur.ok and tb and tc and min(tb + tc) > 0):
        return None
    rng = rng_for(seed + 1, identity(base))
    cb, cc = (float(np.exp(np.mean(np.log(v)))) for v in (tb, tc))
    reps = log_centre_replicates(tc, n_boot, rng, drift_floor) - log_centre_replicates(tb, n_boot, rng, drift_floor)
    if min(len(tb), len(tc)) < 2 and floors(drift_floor)[1] <= 0:
        return Ratio("throughput", cb, cc, cc / cb, method="one window (no interval)", higher_is_better=True)
    lo, hi = interval(reps, confidence)
    method = "bootstrap over processes" if min(len(tb), len(tc)) >= 2 else "one window + assumed drift"
    return Ratio("throughput", cb, cc, cc / cb, lo, hi, confidence, method, higher_is_better=True)


def memory_ratios(base: Record, cur: Record) -> list[Ratio]:
    """One ratio per memory reading both records hold (single readings: no interval)."""
    out: list[Ratio] = []
    if not (base.ok and cur.ok):
        return out
    for name in sorted(set(base.memory) & set(cur.memory)):
        vb, vc = base.memory[name].value_mb, cur.memory[name].value_mb
        if vb <= 0:
            continue
        out.append(Ratio(f"memory:{name}", float(vb), float(vc), float(vc) / float(vb), method="single reading"))
    return out


def energy_ratio(base: Record, cur: Record) -> Ratio | None:
    """Joules per image, current / base (one reading per side: no interval); None unless both have one."""
    jb = base.energy.joules_per_image if base.ok and base.energy else None
    jc = cur.energy.joules_per_image if cur.ok and cur.energy else None
    if jb is None or jc is None or jb <= 0:
        return None
    return Ratio("energy:joules_per_image", float(jb), float(jc), float(jc) / float(jb), method="single reading")


def geomean(point_logs: Sequence[float], replicates: Sequence[np.ndarray], metric: str,
            confidence: float) -> Ratio | None:
    """Geometric mean of ratios; the interval comes from the per-record replicates."""
    if not point_logs:
        return None
    value = math.exp(float(np.mean(point_logs)))
    if not replicates:
        return Ratio(metric, None, None, value, method=f"geometric mean of {len(point_logs)}")
    lo, hi = interval(np.mean(np.vstack(replicates), axis=0), confidence)
    return Ratio(metric, None, None, value, lo, hi, confidence,
                 f"geometric mean of {len(point_logs)}")


# ---------------------------------------------------------------------------- comparisons

@dataclass(frozen=True)
class Row:
    """One joined record: its identity, statuses and ratios (current / base)."""

    identity: dict
    label: str
    base_status: str
    current_status: str
    latency: Ratio | None
    throughput: Ratio | None
    memory: tuple[Ratio, ...] = ()
    energy: Ratio | None = None  # joules per image
    base_quality: str | None = None  # clean | noisy | disturbed (hwprofile.profile._quality); None when not ok
    current_quality: str | None = None
    base_used: bool = True  # the quality policy (hwprofile.analysis.usable) uses the base record
    current_used: bool = True

    @property
    def used(self) -> bool:
        """Both records are used (clean or noisy): the pair counts in the geometric means."""
        return self.base_used and self.current_used

    def to_dict(self) -> dict:
        return {"identity": self.identity, "label": self.label, "base_status": self.base_status,
                "current_status": self.current_status, "base_quality": self.base_quality,
                "current_quality": self.current_quality, "base_used": self.base_used,
                "current_used": self.current_used,
                "latency": self.latency.to_dict() if self.latency else None,
                "throughput": self.throughput.to_dict() if self.throughput else None,
                "memory": [m.to_dict() for m in self.memory],
                "energy": self.energy.to_dict() if self.energy else None}


@dataclass(frozen=True)
class Comparison:
    """``current`` against ``base``: rows, geometric means and the comparability check."""

    base: str
    current: str
    base_device: str
    current_device: str
    rows: tuple[Row, ...]
    summary: tuple[dict, ...]  # per runner and overall: geometric means
    mismatches: tuple[Mismatch, ...]
    only_base: int
    only_current: int
    follows: dict = field(default_factory=dict)  # side name -> follows_table rows
    contrast: dict = field(default_factory=dict)  # side name -> equal-flops contrast rows (_contrast)
    ab: str | None = None  # the setting a deliberate A/B comparison is about (comparability.AB_SETTINGS)

    @property
    def cross_device(self) -> bool:
        return self.base_device != self.current_device

    def to_dict(self) -> dict:
        return {"base": self.base, "current": self.current, "base_device": self.base_device,
                "current_device": self.current_device, "cross_device": self.cross_device,
                "rows": [r.to_dict() for r in self.rows], "summary": list(self.summary),
                "mismatches": [m.to_dict() for m in self.mismatches], "only_base": self.only_base,
                "only_current": self.only_current, "follows": self.follows, "contrast": self.contrast, "ab": self.ab}


def compare_sides(base: Side, cur: Side, *, confidence: float = 0.95, n_boot: int = DEFAULT_BOOT,
                  seed: int = 0, drift_floor: Floor | Callable[[str], Floor] = 0.0,
                  ab: ABSetting | None = None) -> Comparison:
    """Join two sides and compute every ratio, the geometric means and the comparability check.

    ``drift_floor`` is a number or a function of the runner name (see the module docstring). ``ab``: a
    deliberate A/B comparison of that setting (records joined across its identity field, if it has one).
    """
    j = join(base.records, cur.records, cross_device=base.device_id != cur.device_id,
             across=ab.across if ab else None)
    rows, reps = [], []
    for rb, rc in j.pairs:
        lat, floor = None, drift_floor(rb.runner) if callable(drift_floor) else drift_floor
        ident = identity_dict(identity(rb))
        if rc.runner != rb.runner:
            ident["runner"] = f"{rb.runner}>{rc.runner}"
        if rc.precision != rb.precision:
            ident["precision"] = f"{rb.precision}>{rc.precision}"
        used = (is_used(rb), is_used(rc))
        if has_latency(rb) and has_latency(rc):
            point, rep = latency_replicates(rb, rc, n_boot=n_boot, seed=seed, drift_floor=floor)
            lo, hi = interval(rep, confidence)
            lat = Ratio("latency", centre_ms(rb), centre_ms(rc), math.exp(point), lo, hi,
                        confidence, _method(rb, rc))
            if all(used):  # the geometric means hold only pairs the quality policy uses on both sides
                reps.append((ident["runner"], point, rep))
        rows.append(Row(ident, rb.label, rb.status, rc.status, lat,
                        throughput_ratio(rb, rc, confidence=confidence, n_boot=n_boot, seed=seed,
                                         drift_floor=floor),
                        tuple(memory_ratios(rb, rc)), energy_ratio(rb, rc), _quality(rb), _quality(rc), *used))
    cross = base.device_id != cur.device_id
    follows = {s.name: follows_rows(s.records) for s in (base, cur)} if cross else {}
    contrast = {s.name: [c.to_dict() for c in equal_flops(s.records)] for s in (base, cur)} if cross else {}
    return Comparison(base.name, cur.name, base.device_id, cur.device_id, tuple(rows),
                      tuple(geomean_rows(rows, reps, confidence)), tuple(comparability(base, cur, j.pairs)),
                      len(j.only_base), len(j.only_current), follows, contrast, ab.name if ab else None)


def _quality(r: Record) -> str | None:
    q = quality_of(r)
    return None if q is None else q.quality


def geomean_rows(rows: Sequence[Row], reps: Sequence[tuple[str, float, np.ndarray]],
                 confidence: float) -> list[dict]:
    """Geometric means of latency, throughput and memory ratios, per runner and over all (``Comparison.summary``),
    over the pairs whose records are both used (``Row.used``: clean or noisy); ``left_out`` counts the others."""
    runners = sorted({r.identity["runner"] for r in rows})
    out = []
    for runner in [*runners, None] if len(runners) > 1 else [None]:
        every = [r for r in rows if runner is None or r.identity["runner"] == runner]
        pick = [r for r in every if r.used]
        lat_reps = [(p, rep) for rn, p, rep in reps if runner is None or rn == runner]
        lat = geomean([p for p, _ in lat_reps], [rep for _, rep in lat_reps], "latency", confidence)
        thr = geomean([math.log(r.throughput.ratio) for r in pick if r.throughput], [], "throughput", confidence)
        mems = [primary_memory(r) for r in pick]
        mem = geomean([math.log(m.ratio) for m in mems if m and m.ratio > 0], [], "memory", confidence)
        out.append({"runner": runner or "all", "records": len(pick), "left_out": len(every) - len(pick),
                    "latency": lat.to_dict() if lat else None, "throughput": thr.to_dict() if thr else None,
                    "memory": mem.to_dict() if mem else None})
    return out


def primary_memory(row: Row) -> Ratio | None:
    """The memory ratio shown in tables (the most specific reading both records hold)."""
    by_name = {m.metric.split(":", 1)[1]: m for m in row.memory}
    name = preferred_memory(by_name, fallback=True)
    return None if name is None else by_name[name]


def follows_rows(records: Iterable[Record]) -> list[dict]:
    """Whether runtime follows activations or flops on one device (``hwprofile.analysis.answer``)."""
    return follows_table(records)
