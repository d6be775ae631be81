"""The answer first (issue 23): ``run`` and ``show`` open with a few lines per runner and batch (verdict, share of
time with activations and its interval, records used of the group's) and, for undecided rows, what to run; a
profile without an answer gets one line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from hwprofile.analysis import answer
from hwprofile.cli._report import SUMMARY_TITLE, command_lines, summary_lines
from hwprofile.profile import Profile
from hwprofile.report import summarize
from hwprofile.report._summary import DECIDE_BUDGET_S
from synthetic import synthetic_profile

ROOT = Path(__file__).resolve().parents[1]
INFER = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer.json"
FIXTURES = ROOT / "tests" / "data" / "profiles"


def _summary(profile: Profile, path: str | None = "p.json"):
    return summarize(profile, answer(profile.records), path)


def _preface(out: str) -> list[str]:
    """The lines ``show`` prints before the records table."""
    lines = out.splitlines()
    return lines[:next(i for i, line in enumerate(lines) if line.startswith("Records ("))]


def _joined(lines: list[str]) -> str:
    """A command printed over several lines (each but the last ending in ' \\') as one line."""
    return " ".join(line.strip().removesuffix("\\").strip() for line in lines)


def test_the_committed_profile_opens_with_each_row_and_what_would_decide_it():
    profile = Profile.load(ROOT / INFER)
    s = _summary(profile, INFER)
    assert s.kind == "answer" and s.line is None
    assert [(r.runner, r.batch) for r in s.rows] == [("ort:cpu", 1), ("ort:cpu", 8), ("torch:cpu", 1),
                                                      ("torch:cpu", 8)]
    assert all(not r.decided and r.fitted and r.leans and r.to_decide and r.share_acts for r in s.rows)
    assert all(r.n_used == r.n_total == 7 for r in s.rows)
    (act,) = s.actions
    assert act.command == ("hwprofile", "run", "--resume", INFER, "--until-decided", "--budget",
                           str(DECIDE_BUDGET_S))


def test_show_prints_the_answer_first_within_100_columns(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")
    code, out, err = cli("show", INFER)
    assert code == 0, err
    head = _preface(out)
    assert head[0] == SUMMARY_TITLE and head[-1] == ""
    assert all(len(line) <= 100 for line in head)
    rows = [line for line in head if line.startswith("  ort:cpu") or line.startswith("  torch:cpu")]
    assert len(rows) == 4 and all("not distinguishable, leans" in r and "of time with acts" in r
                                  and r.rstrip().endswith("7 of 7 records") for r in rows)
    assert sum(line.startswith("    to decide: ") for line in head) == 4
    cmd = [i for i, line in enumerate(head) if line.lstrip().startswith("hwprofile run --resume")]
    (start,) = cmd
    end = start
    while head[end].endswith(" \\"):
        end += 1
    assert _joined(head[start:end + 1]) == shlex.join(["hwprofile", "run", "--resume", INFER, "--until-decided",
                                                        "--budget", str(DECIDE_BUDGET_S)])


def test_a_decided_profile_says_its_verdicts_and_suggests_nothing():
    s = _summary(synthetic_profile(driver="acts", noise=0.01))
    assert s.kind == "answer" and s.rows and not s.actions
    assert all(r.decided and r.verdict.value == "acts" and r.to_decide is None for r in s.rows)
    lines = summary_lines(s.to_dict(), 100)
    assert lines[0] == SUMMARY_TITLE and len(lines) == 1 + len(s.rows)
    assert all(" acts " in line and "records" in line for line in lines[1:])


def test_one_model_per_row_is_one_line(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    path = str(FIXTURES / "cpu-other-models.json")
    s = _summary(Profile.load(path), path)
    assert s.kind == "one model" and not s.rows and not s.actions
    assert s.line == "One model per runner and batch (RegNetY-200MF): nothing to fit (the answer needs scaled models)."
    code, out, _ = cli("show", path)
    assert code == 0 and _preface(out) == [s.line, ""]
    assert "Does runtime follow" not in out and "too few" not in out


def test_a_profile_without_a_fit_is_one_line_and_the_command_that_fills_it(cli, monkeypatch):
    path = str(FIXTURES / "cpu-a.json")  # four models per runner and batch: one short of a fit
    s = _summary(Profile.load(path), path)
    assert s.kind == "no fit" and s.line.startswith("No answer yet: no runner and batch has 5 usable records")
    assert "at most 4 of 4" in s.line
    assert [a.command[-3:] for a in s.actions] == [("--until-decided", "--budget", str(DECIDE_BUDGET_S))]
    lines = summary_lines(s.to_dict(), 100)
    assert lines[0] == s.line and not any(line.startswith("  ort:cpu") for line in lines)


def test_disturbed_records_of_undecided_rows_are_to_be_re_measured():
    base = synthetic_profile(noise=0.02, batches=(1,))
    recs = [r.replace(quality="disturbed", quality_reasons=["other load 0.9 cores > 0.5"]) if i % 4 else r
            for i, r in enumerate(base.records)]
    s = _summary(Profile(devices=base.devices, sweeps=base.sweeps, records=recs), "x.json")
    (row,) = s.rows
    assert not row.fitted and row.left_out == {"disturbed": sum(1 for i in range(len(recs)) if i % 4)}
    assert s.actions[0].command == ("hwprofile", "run", "--resume", "x.json", "--remeasure", "disturbed")
    assert f"re-measure the {row.left_out['disturbed']} disturbed records" in s.actions[0].why
    text = "\n".join(summary_lines(s.to_dict(), 100))
    assert "hwprofile run --resume x.json --remeasure disturbed" in text


def test_imported_or_merged_profiles_get_no_command():
    base = Profile.load(FIXTURES / "cpu-a.json")
    assert _summary(base).actions  # measured by a sweep on one device: it says what to run
    imported = [r.replace(source="imported", runner="imported:timm") for r in base.records]
    assert not _summary(Profile(devices=base.devices, sweeps=base.sweeps, records=imported)).actions
    other = [r.replace(device_id="synthetic-other") for r in base.records]
    merged = Profile(devices={**base.devices, "synthetic-other": {"synthetic": True}}, sweeps=base.sweeps,
                     records=[*base.records, *other])
    assert not _summary(merged).actions


def test_a_profile_without_an_ok_record_says_so():
    base = synthetic_profile(batches=(1,))
    failed = [r.replace(status="crashed", reason="x", latency=None, throughput=None, memory={})
              for r in base.records]
    s = _summary(Profile(devices=base.devices, records=failed))
    assert s.kind == "no records" and s.line.startswith("No record was measured successfully")


@pytest.mark.parametrize("argv", [["--table", "records"], ["--columns", "model,median_ms"],
                                  ["--format", "csv"]])
def test_the_answer_is_left_out_when_a_table_or_columns_are_picked_or_in_csv(cli, monkeypatch, argv):
    monkeypatch.chdir(ROOT)
    code, out, _ = cli("show", INFER, *argv)
    assert code == 0 and SUMMARY_TITLE not in out


def test_markdown_holds_the_answer_as_a_text_block(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = cli("show", INFER, "--format", "markdown")
    assert code == 0 and out.startswith("```text\n" + SUMMARY_TITLE + "\n")


def test_show_json_holds_the_summary_as_typed_data(cli, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = cli("show", INFER, "--json")
    data = json.loads(out)
    assert code == 0 and list(data)[0] == "summary" and data["summary"]["kind"] == "answer"
    row = data["summary"]["rows"][0]
    assert row["runner"] == "ort:cpu" and row["share_acts"]["ci"][0] <= row["share_acts"]["value"]
    assert data["summary"]["actions"][0]["command"][:4] == ["hwprofile", "run", "--resume", INFER]


@pytest.mark.parametrize("width", [40, 60, 100])
def test_a_long_command_continues_on_the_next_line_and_pastes_as_one(width):
    command = ["hwprofile", "run", "--resume", "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer.json",
               "--until-decided", "--budget", "600"]
    lines = command_lines(command, width)
    assert all(line.endswith(" \\") for line in lines[:-1]) and not lines[-1].endswith("\\")
    # every line fits, but one holding a single argument (an argument is never split)
    assert all(len(line) <= width or len(line.removesuffix(" \\").split()) == 1 for line in lines)
    assert _joined(lines) == shlex.join(command)
    assert command_lines(command, None) == ["    " + shlex.join(command)]
