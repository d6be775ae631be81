"""The answer first: what ``run`` and ``show`` print before their tables (and ``show --json`` key ``summary``).

Per (device, runner, batch, precision, mode) group that holds more than one record: the verdict of
:func:`hwprofile.analysis.answer`, the share of time that scales with activations with its interval, how many
records were used of the group's (and what was left out), and for an undecided group what is expected to decide
it. Then what to run to get there (:class:`Action`): re-measuring disturbed records
(``run --resume FILE --remeasure disturbed``) and measuring until decided (``run --resume FILE --until-decided
--budget 600``), when the profile can be resumed (measured here by a sweep, on one device).

A profile whose groups each hold one model has no question to fit, and one where no group can be fitted has no
answer yet: each gets one line (:attr:`Summary.line`) instead of a row per group. Pure: no measuring, no printing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwprofile.analysis import MIN_MODELS, GroupAnswer, Verdict, group_key, left_out_counts
from hwprofile.profile import Profile

#: the budget (seconds) the suggested ``run --until-decided`` stops at: ten minutes, the default sweep's order
#: of magnitude on a 2-vCPU machine; a row still undecided then says why
DECIDE_BUDGET_S = 600
KINDS = ("answer", "one model", "no fit", "no records")


@dataclass(frozen=True)
class Action:
    """A command that moves the answer on, and why."""

    command: tuple[str, ...]
    why: str

    def to_dict(self) -> dict:
        return {"command": list(self.command), "why": self.why}


@dataclass(frozen=True)
class Row:
    """One group's answer in a few words."""

    device_id: str
    runner: str
    batch: int
    precision: str
    mode: str
    verdict: Verdict
    decided: bool
    fitted: bool  # False: too few usable records, or flops and acts cannot be told apart
    leans: str | None  # the verdict an undecided row's estimates point to
    share_acts: dict | None  # {"value", "ci", "se"} of the additive fit's share of time with activations
    n_used: int
    n_total: int
    left_out: dict[str, int]
    basis: str
    to_decide: str | None

    def to_dict(self) -> dict:
        return {"device_id": self.device_id, "runner": self.runner, "batch": self.batch,
                "precision": self.precision, "mode": self.mode, "verdict": self.verdict.value,
                "decided": self.decided, "fitted": self.fitted, "leans": self.leans, "share_acts": self.share_acts,
                "n_used": self.n_used, "n_total": self.n_total, "left_out": dict(self.left_out),
                "basis": self.basis, "to_decide": self.to_decide}


@dataclass(frozen=True)
class Summary:
    """The answer in a few lines: ``kind`` is ``answer`` (one row per group), or ``one model``, ``no fit``,
    ``no records`` (then ``line`` says it in one line)."""

    kind: str
    line: str | None
    rows: tuple[Row, ...]
    actions: tuple[Action, ...]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "line": self.line, "rows": [r.to_dict() for r in self.rows],
                "actions": [a.to_dict() for a in self.actions]}


def _row(a: GroupAnswer) -> Row:
    s = a.share_acts
    fitted = a.beta_flops is not None
    to_decide = None if a.decided or a.verdict is Verdict.NEITHER else (a.decide.text if a.decide else a.note)
    return Row(a.device_id, a.runner, a.batch, a.precision, a.mode, a.verdict, a.decided, fitted,
               a.decide.points_to if a.decide else None, None if s is None else s.to_dict(), a.n_used, a.n_total,
               left_out_counts(a.excluded), a.basis, to_decide)


def _resumable(profile: Profile) -> bool:
    """Whether ``run --resume`` can continue the profile: a sweep of this tool's own measurements, on one device."""
    return bool(profile.sweeps) and len({r.device_id for r in profile.records}) == 1 and \
        not any(r.imported for r in profile.records)


def _actions(profile: Profile, path: str, open_rows: Sequence[GroupAnswer]) -> tuple[Action, ...]:
    if not open_rows or not _resumable(profile):
        return ()
    out = []
    disturbed = sum(1 for a in open_rows for e in a.excluded if e.kind == "disturbed")
    if disturbed:
        out.append(Action(("hwprofile", "run", "--resume", path, "--remeasure", "disturbed"),
                          f"re-measure the {disturbed} disturbed record{'s' * (disturbed > 1)} of the undecided rows "
                          "on a quiet machine"))
    zoo = {group_key(r) for r in profile.records if r.source == "zoo"}  # --until-decided scales zoo models
    helps = [a for a in open_rows if a.key in zoo and (
        a.n_used < MIN_MODELS or (a.decide is not None and (a.decide.decides or a.decide.repeats is not None)))]
    if helps:
        out.append(Action(("hwprofile", "run", "--resume", path, "--until-decided", "--budget", str(DECIDE_BUDGET_S)),
                          f"measure what is expected to decide the undecided rows (at most {DECIDE_BUDGET_S} s, where "
                          "they were measured)"))
    return tuple(out)


def summarize(profile: Profile, answers: Sequence[GroupAnswer], path: str | None = None) -> Summary:
    """The answer of ``profile`` in a few lines, from its :func:`hwprofile.analysis.answer` ``answers``;
    ``path`` (the profile's file) goes into the commands it suggests."""
    where = path or "PROFILE.json"
    asked = [a for a in answers if a.n_total > 1]  # one record in a group: no question
    if not answers:
        return Summary("no records", "No record was measured successfully: there is nothing to answer yet.", (), ())
    if not asked:
        models = sorted({r.model for r in profile.records if r.ok})
        names = ", ".join(models[:3]) + (f" and {len(models) - 3} more" if len(models) > 3 else "")
        return Summary("one model", f"One model per runner and batch ({names}): nothing to fit (the answer needs "
                                    "scaled models).", (), ())
    open_rows = [a for a in asked if not a.decided and a.verdict is not Verdict.NEITHER]
    rows = tuple(_row(a) for a in asked)
    actions = _actions(profile, where, open_rows)
    if not any(r.fitted for r in rows):
        few = [r for r in rows if r.n_used < MIN_MODELS]
        if few:
            best = max(few, key=lambda r: (r.n_used, -r.n_total))
            left = sum(sum(r.left_out.values()) for r in few)
            line = (f"No answer yet: no runner and batch has {MIN_MODELS} usable records to fit (at most "
                    f"{best.n_used} of {best.n_total}" + (f"; {left} records left out" if left else "") + ").")
        else:
            line = ("No answer yet: in every runner and batch the models are scaled alike, so flops and "
                    "activations cannot be told apart (add w and r at the same s).")
        return Summary("no fit", line, rows, actions)
    return Summary("answer", None, rows, actions)
