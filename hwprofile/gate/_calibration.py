"""Gate thresholds measured on the runner itself (A/A calibration); pure functions, nothing measures here.

An A/A session measures again what a baseline holds with nothing changed, so every joined record's
ratio is the machine's own drift between sessions (other jobs, clocks, thermals) plus sampling noise.
For each runner and timing metric, a session's *drift* of a record is ``max(r, 1/r) - 1`` (either
direction, in slowdown terms). The calibrated threshold is the largest drift of any record over all
calibration sessions of that device, expressed as the metric's threshold (latency ``t = d``;
throughput ``t = d / (1 + d)``, since a drop below ``1 - t`` is a slowdown of ``1 / (1 - t)``), rounded
up to a whole percent, at least 1%, at most 99%. With it, no record of those sessions would have been
a regression, nor even a suspect.

A calibration may widen a threshold at once (the drift happened; it can happen again), but it tightens it
below the device type's default only from :data:`MIN_SESSIONS_TO_TIGHTEN` sessions on: if sessions are
alike, a later one drifts beyond the largest of k with probability 1/(k+1), so one quiet session (1/2)
says little, while five (1/6) is what docs/ci.md asks for before trusting a calibration.

Calibrations live in the baseline profile under ``gate`` (``{device_id: {"sessions": [...]}}``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hwprofile.analysis import join, latency_ratio, throughput_ratio
from hwprofile.errors import ConfigError
from hwprofile.gate._decide import DEFAULT_THRESHOLDS, DRIFT_FLOOR, device_type
from hwprofile.profile import Record, utc_now

METRICS = ("latency", "throughput")
MIN_THRESHOLD, MAX_THRESHOLD = 0.01, 0.99
#: A/A sessions a runner and metric need before a calibration may set a threshold below the default
MIN_SESSIONS_TO_TIGHTEN = 5


@dataclass(frozen=True)
class Observation:
    """One runner and metric in one A/A session."""

    runner: str
    metric: str
    records: int
    drift_median: float  # median over records of max(r, 1/r) - 1
    drift_max: float
    outside: int  # records whose interval excluded 1: the interval missed the session-to-session drift

    @property
    def needed(self) -> float:
        """The smallest threshold that keeps every record of this session a pass."""
        return needed_threshold(self.metric, self.drift_max)


@dataclass(frozen=True)
class Session:
    """One A/A session: when, against what, and what drifted."""

    utc: str
    current: str
    observations: tuple[Observation, ...]

    def to_dict(self) -> dict:
        return {"utc": self.utc, "current": self.current, "observations": [asdict(o) for o in self.observations]}

    @classmethod
    def from_dict(cls, data: dict) -> "Session":
        try:
            session = cls(str(data["utc"]), str(data.get("current", "")),
                          tuple(Observation(**o) for o in data["observations"]))
            for o in session.observations:
                _check_observation(o)
            return session
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"a gate calibration session is malformed ({exc}); expected utc, current and "
                              "observations as written by hwprofile check --calibrate") from None


def _check_observation(o: Observation) -> None:
    if not (isinstance(o.runner, str) and o.metric in METRICS):
        raise ValueError(f"runner {o.runner!r} / metric {o.metric!r}")
    for name in ("drift_median", "drift_max"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} {value!r} is not a finite number >= 0")
    for name in ("records", "outside"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} {value!r} is not a count")


def drift(ratio: float, higher_is_better: bool = False) -> float:
    """``max(r, 1/r) - 1``: how far a ratio is from 1, either way."""
    r = 1 / ratio if higher_is_better else ratio
    return max(r, 1 / r) - 1


def needed_threshold(metric: str, d: float) -> float:
    """The threshold (as the gate reads it for ``metric``) at which a slowdown of ``d`` is within the limit."""
    return d / (1 + d) if metric == "throughput" else d


def round_threshold(t: float) -> float:
    """Up to a whole percent, within [1%, 99%]."""
    return min(MAX_THRESHOLD, max(MIN_THRESHOLD, math.ceil(round(t * 100, 6)) / 100))


def observe(base: Iterable[Record], current: Iterable[Record], *, current_name: str = "", confidence: float = 0.90,
            seed: int = 0, utc: str | None = None) -> Session:
    """One A/A session from a baseline's records and a re-measurement of them (same device)."""
    found: dict[tuple[str, str], list[tuple[float, bool]]] = {}
    for rb, rc in join(base, current).pairs:
        if not (rb.ok and rc.ok):
            continue
        for metric, fn in (("latency", latency_ratio), ("throughput", throughput_ratio)):
            r = fn(rb, rc, confidence=confidence, seed=seed, drift_floor=DRIFT_FLOOR[device_type(rb.runner)])
            if r is None:
                continue
            lo = r.ci_low if r.ci_low is not None else r.ratio
            hi = r.ci_high if r.ci_high is not None else r.ratio
            found.setdefault((rb.runner, metric), []).append((drift(r.ratio, r.higher_is_better), lo > 1 or hi < 1))
    if not found:
        raise ConfigError("the A/A session has no record measured successfully on both sides; nothing to calibrate")
    obs = tuple(Observation(runner, metric, len(v), float(np.median([d for d, _ in v])), max(d for d, _ in v),
                            sum(o for _, o in v)) for (runner, metric), v in sorted(found.items()))
    return Session(utc or utc_now(), current_name, obs)


def thresholds(sessions: Sequence[Session]) -> dict[str, dict[str, float]]:
    """Calibrated thresholds ``{runner: {metric: t}}`` over every session: the largest need, rounded up; below
    the device type's default only once :data:`MIN_SESSIONS_TO_TIGHTEN` sessions observed that runner and
    metric (until then the default stays; a larger need widens it at once)."""
    need: dict[str, dict[str, float]] = {}
    count: dict[tuple[str, str], int] = {}
    for s in sessions:
        for o in s.observations:
            mine = need.setdefault(o.runner, {})
            mine[o.metric] = max(mine.get(o.metric, 0.0), o.needed)
            count[(o.runner, o.metric)] = count.get((o.runner, o.metric), 0) + 1
    return {runner: {m: held(runner, m, round_threshold(t), count[(runner, m)]) for m, t in ms.items()}
            for runner, ms in need.items()}


def held(runner: str, metric: str, calibrated: float, sessions: int) -> float:
    """``calibrated``, or the default while fewer than :data:`MIN_SESSIONS_TO_TIGHTEN` sessions would tighten it."""
    default = DEFAULT_THRESHOLDS[device_type(runner)][metric]
    return calibrated if sessions >= MIN_SESSIONS_TO_TIGHTEN else max(calibrated, default)


def sessions_behind(sessions: Sequence[Session], runner: str, metric: str) -> int:
    """How many sessions observed ``runner`` and ``metric``."""
    return sum(any(o.runner == runner and o.metric == metric for o in s.observations) for s in sessions)


def sessions_of(gate: dict, device_id: str) -> list[Session]:
    """The calibration sessions a profile's ``gate`` section holds for ``device_id``."""
    entry = gate.get(device_id) or {}
    if not isinstance(entry, dict) or not isinstance(entry.get("sessions", []), list) or not all(
            isinstance(x, dict) for x in entry.get("sessions", [])):
        raise ConfigError(f"the gate calibration of {device_id} is malformed; expected {{\"sessions\": [...]}}")
    return [Session.from_dict(s) for s in entry.get("sessions", [])]


def with_session(gate: dict, device_id: str, session: Session) -> dict:
    """A new ``gate`` section with ``session`` added for ``device_id`` (and its thresholds restated)."""
    sessions = [*sessions_of(gate, device_id), session]
    entry = {"sessions": [s.to_dict() for s in sessions], "thresholds": thresholds(sessions)}
    return {**gate, device_id: entry}


def merge_gates(gates: Iterable[dict]) -> dict:
    """The union of several profiles' ``gate`` sections: every device's sessions, each once."""
    out: dict[str, list[Session]] = {}
    for gate in gates:
        for dev in gate:
            have = out.setdefault(dev, [])
            have += [s for s in sessions_of(gate, dev) if s not in have]
    return {dev: {"sessions": [s.to_dict() for s in sorted(ss, key=lambda s: s.utc)],
                  "thresholds": thresholds(ss)} for dev, ss in out.items()}
