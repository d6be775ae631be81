"""Golden output: every command that prints tables prints exactly what it printed before, at 100 columns.

``show`` and ``run`` open with the answer (hwprofile.report._summary): a row per runner and batch, or one line for a
profile with one model per row (``show-one-model``) or no ok record (``show-failed``); ``predict`` and ``select``
say their caveats beside each number (``predict``: another family and outside the measured range).

The cases read the committed profiles under ``profiles/`` and the synthetic fixtures; their
expected stdout and exit code live in ``tests/data/golden/``. They run with ``COLUMNS=100``: without
``--wide`` (or ``--columns``) no line is longer than 100 characters. ``run --resume`` of a complete
profile prints its tables and measures nothing. Regenerate only on purpose, after reading the diff:

    python tests/cli/test_golden_output.py --update
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path
from unittest import mock

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = HERE.parent / "data" / "golden"
FIXTURES = HERE.parent / "data" / "profiles"

INFER = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer.json"
ONE_THREAD = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer__1thread-3proc.json"
TRAIN = "profiles/cpu-intel-xeon-2c__torch__fp32__train.json"


WIDTH = 100


def _fx(name: str) -> str:
    return str((FIXTURES / name).relative_to(ROOT))


# name -> argv; "{copy}" is a fresh copy of the profile that follows it (run --resume writes it),
# "{new}" a path in a fresh folder (written by the command).
CASES: dict[str, list[str]] = {
    "run-resume-infer": ["run", "--resume", "{copy}", INFER],
    "run-resume-train": ["run", "--resume", "{copy}", TRAIN],
    "show-infer": ["show", INFER],
    "show-train": ["show", TRAIN],
    "show-one-thread": ["show", ONE_THREAD],
    "show-infer-markdown": ["show", INFER, "--format", "markdown"],
    "compare-infer-one-thread": ["compare", INFER, ONE_THREAD, "--allow-mismatch"],
    "compare-infer-self": ["compare", INFER, INFER],
    "compare-fixtures": ["compare", _fx("cpu-a.json"), _fx("cpu-slow.json")],
    "compare-cross-device": ["compare", _fx("cpu-a.json"), _fx("gpu.json")],
    "check-infer-self": ["check", "--baseline", INFER, INFER],
    "check-train-self": ["check", "--baseline", TRAIN, TRAIN, "--metrics", "latency,throughput,memory"],
    "check-infer-one-thread": ["check", "--baseline", INFER, ONE_THREAD, "--allow-mismatch"],
    "check-fixtures-regression": ["check", "--baseline", _fx("cpu-a.json"), _fx("cpu-slow.json")],
    "check-fixtures-markdown": ["check", "--baseline", _fx("cpu-a.json"), _fx("cpu-a2.json"),
                                "--format", "markdown"],
    "check-calibrate": ["check", "--baseline", "{copy}", _fx("cpu-a.json"), _fx("cpu-a2.json"), "--calibrate"],
    "check-baseline-created": ["check", "--baseline", "{new}", _fx("cpu-a.json"), "--update-baseline"],
    "compare-ab-threads": ["compare", INFER, ONE_THREAD, "--ab", "threads"],
    "show-infer-wide": ["show", INFER, "--wide"],
    "show-infer-columns": ["show", INFER, "--columns", "model,runner,batch,median_ms,p50_ms,p90_ms,p95_ms,p99_ms,"
                                                      "min_ms,mean_ms"],
    "show-infer-csv-records": ["show", INFER, "--format", "csv", "--table", "records"],
    "show-fixture": ["show", _fx("cpu-a.json")],
    "models": ["models"],
    "complexity": ["complexity", "RegNetY-4.0GF", "--strategy", "dWr", "--scale", "4"],
    "scale": ["scale", "EfficientNet-B0", "--strategies", "w,dw,dwr,dWr", "--scales", "1,2,4,16"],
    "run-plan": ["run", "--plan", "--device", "cpu", "--runners", "torch:cpu,ort:cpu"],
    "predict": ["predict", INFER, "RegNetY-4.0GF", "--strategy", "dWr", "--scale", "2"],
    "select": ["select", INFER, "--model", "EfficientNet-B0", "--max-latency-ms", "100"],
    "select-caveats": ["select", INFER, "--model", "EfficientNet-B0", "--max-latency-ms", "100", "--runner", "ort:cpu",
                       "--batch", "1", "--top", "40"],
    "predict-same-family": ["predict", ONE_THREAD, "EfficientNet-B0", "--strategy", "dWr", "--scale", "2"],
    "show-one-model": ["show", _fx("cpu-other-models.json")],
    "show-failed": ["show", _fx("cpu-failed.json")],
    "merge": ["merge", _fx("cpu-a.json"), _fx("gpu.json"), "-o", "{new}"],
}
#: cases that may print lines wider than the width: every column asked for, or not a terminal table
WIDE = {"show-infer-wide", "show-infer-columns", "show-infer-csv-records", "show-infer-markdown",
        "check-fixtures-markdown"}


def _scratch() -> Path:
    """A scratch folder whose path (relative to the root) has the same length on every machine: tables are
    fitted to the width before the path is written as ``<tmp>``."""
    return Path("build") / f"golden-{os.getpid() % 10**7:07d}"


def _run(name: str, _unused: Path | None = None) -> tuple[int, str]:
    tmp = _scratch()
    shutil.rmtree(ROOT / tmp, ignore_errors=True)
    (ROOT / tmp).mkdir(parents=True)
    try:
        return _run_in(name, tmp)
    finally:
        shutil.rmtree(ROOT / tmp, ignore_errors=True)


def _run_in(name: str, tmp: Path) -> tuple[int, str]:
    from hwprofile.cli import main

    argv = list(CASES[name])
    if "{copy}" in argv:
        i = argv.index("{copy}")
        copy = tmp / "profile.json"
        shutil.copyfile(ROOT / argv[i + 1], ROOT / copy)
        argv[i:i + 2] = [str(copy)]
    if "{new}" in argv:
        argv[argv.index("{new}")] = str(tmp / "new.json")
    patches = contextlib.ExitStack()
    if argv[:2] == ["run", "--resume"]:  # resume as the machine that measured the profile, whatever this one is
        stored = json.loads((ROOT / argv[2]).read_text())["devices"]
        patches.enter_context(mock.patch("hwprofile.sweep._local.fingerprint",
                                         lambda device: dict(next(iter(stored.values())))))
    out, err = io.StringIO(), io.StringIO()
    with patches, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue().replace(str(tmp), "<tmp>")


@pytest.mark.parametrize("name", sorted(CASES))
def test_prints_the_same_as_before(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    code, out = _run(name, tmp_path)
    assert code == expected["exit_code"]
    assert out.splitlines() == expected["stdout"].splitlines()


@pytest.mark.parametrize("name", sorted(set(CASES) - WIDE))
def test_no_line_is_wider_than_the_terminal(name, tmp_path, monkeypatch):
    """Every table, its title and its notes fit 100 columns (the goldens hold what they print)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    _, out = _run(name, tmp_path)
    wide = [line for line in out.splitlines() if len(line) > WIDTH]
    assert not wide, wide[:3]


def test_wide_shows_what_the_terminal_width_leaves_out(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    _, narrow = _run("show-infer", tmp_path)
    _, wide = _run("show-infer-wide", tmp_path)
    header = next(line for line in wide.splitlines() if line.startswith("model "))  # the records, after the answer
    assert max(map(len, wide.splitlines())) > WIDTH and "% compute" in header
    assert "--wide shows every column" in narrow and "--wide shows every column" not in wide


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    os.chdir(ROOT)
    os.environ["COLUMNS"] = str(WIDTH)
    sys.path.insert(0, str(ROOT))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for case in sorted(CASES):
        code, out = _run(case)
        (GOLDEN / f"{case}.json").write_text(json.dumps(
            {"argv": CASES[case], "exit_code": code, "stdout": out}, indent=1) + "\n")
        print(case, code, len(out.splitlines()), "lines")


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["devices"], ["complexity", "{tiny}", "--by-node"],
                                  ["layers", "{tiny}", "--runner", "ort:cpu", "--device", "cpu", "--resolution", "32",
                                   "--iterations", "6"]], ids=lambda a: a[0])
def test_commands_whose_output_depends_on_the_machine_fit_too(argv, tmp_path, monkeypatch):
    """No golden (their numbers are this machine's), but the same width rule."""
    from hwprofile.cli import main
    from layer_fixtures import tiny_cnn

    monkeypatch.setenv("COLUMNS", str(WIDTH))
    tiny = tiny_cnn(tmp_path / "tiny.onnx", res=32) or str(tmp_path / "tiny.onnx")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main([a.replace("{tiny}", tiny) for a in argv])
    assert code == 0
    wide = [line for line in out.getvalue().splitlines() if len(line) > WIDTH]
    assert out.getvalue() and not wide, wide[:3]


#: the cases of show and run: each opens with the answer (or its one line), then a blank line, then the records
OPENING = ("show-infer", "show-train", "show-one-thread", "show-infer-wide", "run-resume-infer", "run-resume-train",
           "show-fixture", "show-one-model", "show-failed")


@pytest.mark.parametrize("name", OPENING)
def test_show_and_run_open_with_the_answer(name):
    from hwprofile.cli._report import SUMMARY_TITLE

    out = json.loads((GOLDEN / f"{name}.json").read_text())["stdout"].splitlines()
    head = out[:next(i for i, line in enumerate(out) if line.startswith("Records ("))]
    assert len(head) >= 2 and head[-1] == ""
    assert head[0] == SUMMARY_TITLE or head[0].startswith(("The answer, per runner and batch (", "One model per runner",
                                                           "No answer yet", "No record"))
