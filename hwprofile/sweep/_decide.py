"""Measure until decided (``run --until-decided --budget SECONDS``).

The sweep is measured first; then, round by round, every row (device, runner, batch, precision, mode) is
answered (:func:`hwprofile.analysis.answer`) and each undecided one gets what its forecast
(:func:`hwprofile.analysis._design.what_would_decide`) says is expected to decide it:

- models to add: the most informative one is measured for that row (one record);
- else repeats: each of the row's usable records is measured once more, in a new process, and pooled into
  the record (:func:`hwprofile.analysis.pool`), so its spread between processes estimates pure error;
- a row with too few usable records to fit gets the next models of :data:`FILL_ORDER` it lacks.

The rounds stop when every row is decided, when the budget is spent, when nothing more can be planned
(e.g. the forecast says neither models nor a few repeats would decide it), or after :data:`MAX_ROUNDS`.
The result says which rows stayed undecided and why; the rounds are logged in the profile's sweep entry
(``until_decided``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from hwprofile.analysis import MIN_MODELS, GroupAnswer, answer, counts_of, usable
from hwprofile.errors import ConfigError
from hwprofile.profile import Profile, Record, utc_now
from hwprofile.sweep._config import Item, SweepConfig
from hwprofile.sweep._run import MeasureFn, Session, measure_items, sweep_session
from hwprofile.zoo import get_spec, scale

MAX_ROUNDS = 12
#: models added, in this order, to a row with too few usable records to fit at all
FILL_ORDER = (("w", 16.0), ("r", 16.0), ("dWr", 16.0), ("w", 4.0), ("r", 4.0), ("dWr", 4.0), ("w", 8.0),
              ("r", 8.0), ("dWr", 8.0), ("w", 2.0), ("r", 2.0))


@dataclass(frozen=True)
class RowOutcome:
    runner: str
    batch: int
    precision: str
    mode: str
    verdict: str
    why: str | None  # for a row that stayed undecided

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DecideReport:
    """What ``--until-decided`` did: its rounds and how each row ended."""

    rounds: list[dict] = field(default_factory=list)
    rows: list[RowOutcome] = field(default_factory=list)
    stop: str = ""

    @property
    def undecided(self) -> list[RowOutcome]:
        return [r for r in self.rows if r.why is not None]

    def lines(self) -> list[str]:
        added = sum(r["added"] for r in self.rounds)
        repeated = sum(r["repeated"] for r in self.rounds)
        head = (f"until decided: {len(self.rounds)} round{'s' if len(self.rounds) != 1 else ''} after the sweep "
                f"({added} records of added models, {repeated} repeats); {self.stop}")
        return [head] + [f"  {r.runner} b{r.batch} {r.mode} stayed undecided: {r.why}" for r in self.undecided]

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "rows": [r.to_dict() for r in self.rows], "stop": self.stop}


def _item(model: str, strategy: str | None, s: float, batch: int, runner: str) -> Item:
    base = get_spec(model)
    spec = base if strategy is None else scale(base, strategy, s)
    return Item(base.name, strategy, float(s), batch, runner, spec=spec)


def _group(profile: Profile, a: GroupAnswer) -> list[Record]:
    return [r for r in profile.records if (r.device_id, r.runner, r.batch, r.precision, r.mode) == a.key]


def _zoo_model(records: list[Record]) -> str | None:
    names = [r.model for r in records if r.source == "zoo"]
    return max(set(names), key=names.count) if names else None


def _actions(profile: Profile, a: GroupAnswer) -> tuple[list[tuple[Item, Record | None]], str | None]:
    """What to measure for one undecided row: (items, each with the record to pool into), or why nothing."""
    group = _group(profile, a)
    model = _zoo_model(group)
    tried = {(r.strategy, float(r.scale)) for r in group}  # measured already, in any status (a failure stays one)
    if a.n_used < MIN_MODELS:
        if model is None:
            return [], f"too few usable records ({a.n_used}) and no zoo model to scale"
        todo = [(st, s) for st, s in FILL_ORDER if (st, s) not in tried and counts_of(model, st, s) is not None]
        todo = todo[:MIN_MODELS - a.n_used]
        if not todo:
            return [], "too few usable records, and every candidate model is measured"
        return [(_item(model, st, s, a.batch, a.runner), None) for st, s in todo], None
    d = a.decide
    if d is None or d.points_to is None:
        return [], a.basis if d is None else d.text
    new = [(st, s) for st, s in d.add if (st, s) not in tried] if model is not None else []
    if model is not None and new and d.decides:
        return [(_item(model, *new[0], a.batch, a.runner), None)], None
    if d.repeats is not None:
        return [(_item(u.record.model, u.record.strategy, u.record.scale, a.batch, a.runner), u.record)
                for u in usable(group).used if u.record.source == "zoo"], None
    if model is not None and new:  # models are not expected to decide it alone, but they are the most informative step
        return [(_item(model, *new[0], a.batch, a.runner), None)], None
    return [], d.text


def _outcomes(answers: list[GroupAnswer], why: dict) -> list[RowOutcome]:
    return [RowOutcome(a.runner, a.batch, a.precision, a.mode, a.verdict.value,
                       None if a.decided or a.verdict.value == "neither" else why.get(a.key, a.basis))
            for a in answers]


def until_decided(session: Session, *, quiet: bool = True, max_rounds: int = MAX_ROUNDS) -> DecideReport:
    """Rounds of models and repeats until every row of ``session``'s profile is decided or the budget is spent."""
    budget = session.config.budget_s
    report = DecideReport()
    why: dict = {}
    for _ in range(max_rounds):
        answers = answer(session.profile.records)
        open_rows = [a for a in answers if not a.decided and a.verdict.value != "neither"]
        if not open_rows:
            report.stop = "every row is decided"
            break
        if budget is not None and session.elapsed_s() >= budget:
            report.stop = f"the budget of {budget:g} s is spent"
            why.update({a.key: f"budget spent; {a.decide.text if a.decide else a.basis}" for a in open_rows})
            break
        plan: list[tuple[Item, Record | None]] = []
        for a in open_rows:
            acts, reason = _actions(session.profile, a)
            plan += acts
            if reason:
                why[a.key] = reason
        if not plan:
            report.stop = "nothing more is expected to decide the rows left"
            break
        for item, _ in plan:  # an engine is built once for every batch its model is measured at
            session.artifacts.batches[item.label] = tuple(sorted(
                {*session.artifacts.batches.get(item.label, ()), item.batch}))
        added = repeated = 0
        for item, into in plan:
            if budget is not None and session.elapsed_s() >= budget:
                break
            if into is None:
                measure_items(session, [item], quiet=quiet)
                added += 1
            else:
                current = session.profile.by_key().get(into.key(), into)
                session.measure(item, pool_into=current)
                repeated += 1
        report.rounds.append({"added": added, "repeated": repeated, "finished_utc": utc_now(),
                              "rows_open": [f"{a.runner} b{a.batch} {a.mode}" for a in open_rows]})
    else:
        report.stop = f"stopped after {max_rounds} rounds"
        why.update({a.key: a.decide.text if a.decide else a.basis
                    for a in answer(session.profile.records) if not a.decided})
    answers = answer(session.profile.records)
    if all(a.decided or a.verdict.value == "neither" for a in answers):
        report.stop = "every row is decided"
    report.rows = _outcomes(answers, why)
    session.profile.sweeps[-1]["until_decided"] = report.to_dict()
    session.profile.save(session.path)
    return report


def run_until_decided(config: SweepConfig, out: str | os.PathLike | None = None, *, resume: bool = False,
                      quiet: bool = False, measure_fn: MeasureFn | None = None
                      ) -> tuple[Profile, Path, list[str], DecideReport]:
    """The sweep of ``config``, then rounds until every row is decided or ``config.budget_s`` is spent."""
    if config.budget_s is None:
        raise ConfigError("--until-decided needs --budget SECONDS (the most time the sweep and its rounds may take)")
    with sweep_session(config, out, resume=resume, measure_fn=measure_fn) as (session, items, notes, done):
        measure_items(session, items, done, quiet)
        report = until_decided(session, quiet=quiet)
    return session.profile, session.path, notes, report
