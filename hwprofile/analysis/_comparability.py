"""Whether two sides can be compared, from what each runner declares (pure functions: nothing here prints).

Every settings field a runner writes is declared on its class (:class:`hwprofile.runners.Runner`):
``result_settings`` change what is measured, ``observed_settings`` are readings of the machine or the
run, ``bookkeeping_settings`` say how, when and where it ran; ``result_fingerprint`` names the device
fingerprint fields (library versions, CUDA, driver) that change its results. The rest of the
fingerprint is declared here (:data:`FINGERPRINT_OBSERVED`, :data:`FINGERPRINT_BOOKKEEPING`).

On one device a differing result field refuses the comparison, an observation warns, bookkeeping is
never compared, and a field nobody declared (written by a newer hwprofile or a plugin runner) warns.
A field recorded on one side only warns. Across devices, hardware, providers and threads differ by
design: only a precision setting, or two version numbers of a result library, refuse; two other
version numbers warn. Imported records (``hwprofile import``: rows of someone else's table) are never
compared with hwprofile's own measurements: a joined pair of one of each refuses, on any devices
(:func:`origin_mismatch`). See docs/comparability.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from hwprofile.errors import ConfigError, clip
from hwprofile.profile import Record
from hwprofile.runners import BOOKKEEPING, OBSERVATION, RESULT, Runner, longest_prefix, runner_class

#: The effect of a field nobody declared: a difference warns (it may matter; hwprofile cannot say).
UNKNOWN = "unknown"
#: Device fingerprint fields that describe the machine: a difference on one device id warns.
FINGERPRINT_OBSERVED: tuple[str, ...] = ("device", "kind", "cpu", "ram_gb", "os", "python", "libraries", "versions",
                                         "gpu", "peaks", "imported.sha256")
#: Fingerprint fields that change from run to run or name one machine: never compared.
FINGERPRINT_BOOKKEEPING: tuple[str, ...] = (
    "imported",  # where an imported table came from: only its sha256 is compared (a different table warns)
    "id", "gpu.uuid", "gpu.pci_bus_id", "peaks.measured_utc", "peaks.attempts", "peaks.foreign_cpu_cores",
    *(f"peaks.{test}.repeats" for test in ("matmul_fp32", "matmul_fp16", "matmul_tf32", "copy")))
#: Where a fingerprint keeps library versions: ``libraries`` (hwprofile.measure._fingerprint) or ``versions``
#: (hand-written fingerprints): a runner's ``libraries.X`` covers both.
LIBRARY_SECTIONS = ("libraries", "versions")
#: Settings every imported record writes (its table line, hwprofile's counts of it): never compared.
IMPORTED_SETTINGS = "imported"


class SideLike(Protocol):
    """One side of a comparison: a device and its fingerprint (read-only: a frozen ``compare.Side`` is one)."""

    @property
    def device_id(self) -> str: ...

    @property
    def fingerprint(self) -> dict: ...


@dataclass(frozen=True)
class Mismatch:
    """A difference between two sides: ``refuse`` makes a comparison meaningless, ``warn`` may matter."""

    kind: str
    field: str
    base: Any
    current: Any
    severity: str  # refuse | warn
    records: int = 0  # how many joined records differ in this setting (0: the device fingerprint)
    declared: str = ""  # a result field's kind ("thread setting", "precision"...); "" for anything else
    shared: bool = True  # every runner of the differing records declares the field (False: runner-specific)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        where = f" in {self.records} records" if self.records else ""
        return f"{self.kind} {self.field}: {_short(self.base)} vs {_short(self.current)}{where}"


def _short(value: Any) -> str:
    return clip(value if isinstance(value, str) else json.dumps(value, default=str), 60)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


# ------------------------------------------------------------------------------ declarations

def runner_declarations(runner: str) -> type[Runner]:
    """The class whose declarations judge ``runner``'s settings; the base class (the fields every
    measurement writes) for a runner this process does not know."""
    try:
        return runner_class(runner)
    except ConfigError:
        return Runner


_RANK = {RESULT: 3, OBSERVATION: 2, UNKNOWN: 1, BOOKKEEPING: 0}


def setting_effect(field: str, runners: Sequence[type[Runner]]) -> tuple[str, str]:
    """(effect, kind) of a settings field (dotted, without ``settings.``) as ``runners`` declare it; a
    runner that does not declare it counts as ``(UNKNOWN, "setting")``, and the strongest effect wins
    (result, observation, unknown, bookkeeping) when the records of one difference ran on several runners."""
    if field == IMPORTED_SETTINGS or field.startswith(IMPORTED_SETTINGS + "."):
        return BOOKKEEPING, "setting"
    judged = [cls.declared(field) or (UNKNOWN, "setting") for cls in runners]
    return max(judged, key=lambda e: _RANK[e[0]], default=(UNKNOWN, "setting"))


def _covers(declared: str, field: str) -> bool:
    names = [declared]
    section, _, rest = declared.partition(".")
    if section in LIBRARY_SECTIONS:
        names = [f"{s}.{rest}" for s in LIBRARY_SECTIONS]
    return any(field == n or field.startswith(n + ".") for n in names)


_FINGERPRINT = {**{f: (OBSERVATION, "fingerprint") for f in FINGERPRINT_OBSERVED},
                **{f: (BOOKKEEPING, "fingerprint") for f in FINGERPRINT_BOOKKEEPING}}


def fingerprint_effect(field: str, runners: Sequence[type[Runner]] = ()) -> tuple[str, str]:
    """(effect, kind) of a device fingerprint field (dotted): a result (``backend version``) when one of
    ``runners`` declares it in ``result_fingerprint``, else as :data:`FINGERPRINT_OBSERVED` /
    :data:`FINGERPRINT_BOOKKEEPING` say, else ``(UNKNOWN, "fingerprint")``."""
    if any(_covers(d, field) for cls in runners for d in cls.result_fingerprint):
        return RESULT, "backend version"
    return longest_prefix(_FINGERPRINT, field) or (UNKNOWN, "fingerprint")


def stable_fingerprint(fingerprint: dict) -> dict:
    """A fingerprint's flattened fields without its bookkeeping (what two copies of one device must share)."""
    return {k: v for k, v in flatten(fingerprint).items() if fingerprint_effect(k)[0] != BOOKKEEPING}


# -------------------------------------------------------------------------------- judging

def _norm(value: Any) -> Any:
    """Versions compare without local build labels: ``2.13.0+cpu`` == ``2.13.0+cu130``."""
    return value.split("+", 1)[0] if isinstance(value, str) and value[:1].isdigit() else value


def _diff(a: dict, b: dict, both: bool = False) -> list[tuple[str, Any, Any, bool]]:
    """Differing leaves as (key, a's value, b's value, present on both sides); ``both`` keeps only
    keys present on both sides."""
    fa, fb = flatten(a), flatten(b)
    keys = set(fa) & set(fb) if both else set(fa) | set(fb)
    return [(k, fa.get(k), fb.get(k), k in fa and k in fb) for k in sorted(keys)
            if _norm(fa.get(k)) != _norm(fb.get(k))]


def _is_version(value: Any) -> bool:
    return isinstance(value, str) and bool(re.match(r"\d+(\.\d+)+", value))


def judge(effect: str, kind: str, vb: Any, vc: Any, same_device: bool, what: str,
          on_both: bool = True) -> tuple[str, str] | None:
    """(kind, severity) of one difference, or None when it does not matter.

    Bookkeeping never matters. A field one side only records warns. On one device a result field
    refuses (named by its kind), anything else warns (named ``what``: setting | fingerprint). Across
    devices only a precision field, or two version numbers of a result library, refuse; two other
    version numbers warn; other differences are expected.
    """
    if effect == BOOKKEEPING:
        return None
    if not on_both:
        return f"{what} recorded on one side only", "warn"
    if same_device:
        return (kind, "refuse") if effect == RESULT else (what, "warn")
    if effect == RESULT and kind == "precision":
        return kind, "refuse"
    if _is_version(vb) and _is_version(vc):
        return (kind, "refuse") if effect == RESULT and kind == "backend version" else ("version", "warn")
    return None


def origin(r: Record) -> str:
    """``imported`` (a row of someone else's table) or ``measured`` (by hwprofile)."""
    return "imported" if r.imported else "measured"


def origin_mismatch(pairs: Sequence[tuple[Record, Record]]) -> Mismatch | None:
    """The refusal to compare imported records with measured ones: one Mismatch counting the joined pairs
    whose origins differ (None when every pair is of one origin). ``--allow-mismatch`` overrides it."""
    mixed = [(origin(rb), origin(rc)) for rb, rc in pairs if rb.imported != rc.imported]
    if not mixed:
        return None
    return Mismatch("origin", "records", mixed[0][0], mixed[0][1], "refuse", len(mixed))


def comparability(base: SideLike, cur: SideLike, pairs: Sequence[tuple[Record, Record]]) -> list[Mismatch]:
    """Differences that make the comparison meaningless (refuse) or worth a look (warn).

    Imported against measured records refuse (:func:`origin_mismatch`). Record settings are compared pair by
    pair, by what the records' runners declare; device fingerprints once, with the result fields of every
    joined runner.
    """
    same_device = base.device_id == cur.device_id
    mixed = origin_mismatch(pairs)
    found: dict[tuple[str, str, str, bool], tuple[int, dict[type[Runner], None]]] = {}
    joined: dict[str, type[Runner]] = {}
    for rb, rc in pairs:
        runners = [joined.setdefault(n, runner_declarations(n)) for n in (rb.runner, rc.runner)]
        for k, vb, vc, on_both in _diff(rb.settings.to_dict(), rc.settings.to_dict(), both=not same_device):
            key = (k, json.dumps(vb, default=str), json.dumps(vc, default=str), on_both)
            n, seen = found.get(key, (0, {}))
            found[key] = (n + 1, {**seen, **dict.fromkeys(runners)})
    out = [mixed] if mixed else []
    for (k, vb, vc, on_both), (n, declaring) in found.items():
        effect, kind = setting_effect(k, tuple(declaring))
        judged = judge(effect, kind, json.loads(vb), json.loads(vc), same_device, "setting", on_both)
        if judged:
            declared = [cls.declared(k) for cls in declaring]
            out.append(Mismatch(judged[0], f"settings.{k}", json.loads(vb), json.loads(vc), judged[1], n,
                                kind if effect == RESULT else "", all(d is not None for d in declared)))
    every = tuple(dict.fromkeys(joined.values()))
    for k, vb, vc, on_both in _diff(base.fingerprint, cur.fingerprint, both=not same_device):
        effect, kind = fingerprint_effect(k, every)
        judged = judge(effect, kind, vb, vc, same_device, "fingerprint", on_both)
        if judged:
            out.append(Mismatch(judged[0], f"fingerprint.{k}", vb, vc, judged[1],
                                declared=kind if effect == RESULT else ""))
    return out


# ---------------------------------------------------------------------------- A/B comparisons

@dataclass(frozen=True)
class ABSetting:
    """A setting ``compare --ab`` may compare on purpose: the declared kinds of result field that make up the
    difference, and the record identity field joined across (``runner``, ``precision``) if any."""

    name: str
    kinds: tuple[str, ...]
    across: str | None = None
    runner_specific: bool = False  # fields only one of two runners declares are part of the difference

    def deliberate(self, m: Mismatch) -> bool:
        """Whether ``m`` is (part of) the difference this A/B comparison is about."""
        return m.declared in self.kinds or (self.runner_specific and not m.shared)


#: The settings an A/B comparison may be about (docs/comparability.md#ab-comparisons).
AB_SETTINGS: dict[str, ABSetting] = {
    "threads": ABSetting("threads", ("thread setting",)),
    "precision": ABSetting("precision", ("precision",), across="precision"),
    "runner": ABSetting("runner", ("backend", "backend version", "provider"), across="runner",
                        runner_specific=True),
    "version": ABSetting("version", ("backend version",)),
}


def ab_setting(name: str) -> ABSetting:
    try:
        return AB_SETTINGS[name]
    except KeyError:
        raise ConfigError(f"--ab {name!r}: expected one of {', '.join(AB_SETTINGS)}") from None


def ab_split(mismatches: Iterable[Mismatch], setting: ABSetting) -> tuple[list[Mismatch], list[Mismatch]]:
    """(the deliberate difference, everything else) of an A/B comparison's mismatches."""
    mine: list[Mismatch] = []
    rest: list[Mismatch] = []
    for m in mismatches:
        (mine if setting.deliberate(m) else rest).append(m)
    return mine, rest


def ab_text(setting: ABSetting, mine: Sequence[Mismatch], base_value: str = "", current_value: str = "") -> str:
    """The deliberate difference in one line: each field both runners record once, the runner-specific
    ones counted (``show --json`` or ``compare --json`` lists them)."""
    shared = summarize(m for m in mine if m.shared)
    own = {m.field for m in mine if not m.shared}
    parts = ([f"{setting.across} {base_value} vs {current_value}"] if base_value and base_value != current_value
             else []) + [m.short() for m in shared]
    if own:
        parts.append(f"{len(own)} settings only one {setting.across or 'side'} records")
    most = max((m.records for m in mine), default=0)
    return "; ".join(parts) + (f" (in {most} records)" if most else "")


# ------------------------------------------------------------------------------ summaries

@dataclass(frozen=True)
class MismatchSummary:
    """Every difference of one field, once: how many records differ and which values each side holds."""

    kind: str
    field: str
    severity: str
    records: int
    base: tuple[Any, ...]
    current: tuple[Any, ...]

    def to_dict(self) -> dict:
        return {**asdict(self), "base": list(self.base), "current": list(self.current), "text": self.text()}

    def short(self) -> str:
        """``threads 2 vs 1``: the field (without ``settings.``) and both sides' values."""
        name = self.field.removeprefix("settings.")
        if any(_structured(v) for v in (*self.base, *self.current)):
            return f"{name} differs"
        return f"{name} {_values(self.base)} vs {_values(self.current)}"

    def text(self) -> str:
        where = f" in {self.records} records" if self.records else ""
        if any(_structured(v) for v in (*self.base, *self.current)):
            return f"{self.kind} {self.field}: differs{where}"
        return f"{self.kind} {self.field}: {_values(self.base)} vs {_values(self.current)}{where}"


def summarize(mismatches: Iterable[Mismatch]) -> list[MismatchSummary]:
    """One summary per (severity, kind, field), in order of first appearance: a setting that differs in many
    records with many values is one line, its values rounded (a range where they are numbers)."""
    groups: dict[tuple[str, str, str], list[Mismatch]] = {}
    for m in mismatches:
        groups.setdefault((m.severity, m.kind, m.field), []).append(m)
    return [MismatchSummary(kind, field, severity, sum(m.records for m in ms),
                            tuple(dict.fromkeys(_key(m.base) for m in ms)),
                            tuple(dict.fromkeys(_key(m.current) for m in ms)))
            for (severity, kind, field), ms in groups.items()]


def _key(value: Any) -> Any:
    """A hashable form of a value (lists and dicts as JSON text)."""
    return json.dumps(value, default=str, sort_keys=True) if isinstance(value, (list, dict)) else value


def _structured(value: Any) -> bool:
    """A value holding objects (e.g. a list of re-measurements): not worth spelling out in one line."""
    return isinstance(value, dict) or (isinstance(value, str) and value.startswith(("[{", "{")))


def _numbers(values: Sequence[Any]) -> list[float] | None:
    """Every number among ``values`` (lists of numbers count element by element), or None if any is not one."""
    out: list[float] = []
    for v in values:
        v = json.loads(v) if isinstance(v, str) and v[:1] == "[" else v
        items = v if isinstance(v, list) else [v]
        for x in items:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                return None
            out.append(float(x))
    return out


def round3(x: float) -> str:
    """A number for people: 3 significant digits, k/M/G/T from 10,000 on, never e-notation
    (18.097825 -> 18.1, 224441880565.8 -> 224G, 0.0001234 -> 0.000123)."""
    if x == 0:
        return "0"
    for suffix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= 10 * size:
            return round3(x / size) + suffix
    if abs(x) >= 100:
        return f"{x:.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") or "0"


def _values(values: Sequence[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "unset"
    unset = " or unset" if len(present) < len(values) else ""
    numbers = _numbers(present)
    if numbers:
        lo, hi = round3(min(numbers)), round3(max(numbers))
        return (lo if lo == hi else f"{lo} to {hi}") + unset
    if len(present) == 1:
        return _short(present[0]) + unset
    return f"{len(present)} different values{unset}"
