"""Golden output: ``run`` / ``show`` / ``compare`` / ``check`` print exactly what they printed before.

The cases read the committed profiles under ``profiles/`` and the synthetic fixtures; their
expected stdout and exit code live in ``tests/data/golden/``, captured from the CLI before
the layering refactor (issue 14). ``run --resume`` of a complete profile prints its tables and
measures nothing. Regenerate only on purpose, after reading the diff:

    python tests/cli/test_golden_output.py --update
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOLDEN = HERE.parent / "data" / "golden"
FIXTURES = HERE.parent / "data" / "profiles"

INFER = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer.json"
ONE_THREAD = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer__1thread-3proc.json"
TRAIN = "profiles/cpu-intel-xeon-2c__torch__fp32__train.json"


def _fx(name: str) -> str:
    return str((FIXTURES / name).relative_to(ROOT))


# name -> argv; "{copy}" is a fresh copy of the profile that follows it (run --resume writes it).
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
}


def _run(name: str, tmp: Path, monkeypatch=None) -> tuple[int, str]:
    from hwprofile.cli import main

    argv = list(CASES[name])
    if "{copy}" in argv:
        i = argv.index("{copy}")
        copy = tmp / "profile.json"
        shutil.copyfile(ROOT / argv[i + 1], copy)
        argv[i:i + 2] = [str(copy)]
        if monkeypatch is not None:
            # resume refuses a profile of another machine: this machine is taken to be the one that measured it,
            # so the case runs the same on any CI runner (Intel or AMD), as on the machine that measured it
            (fp,) = json.loads(copy.read_text())["devices"].values()
            monkeypatch.setattr("hwprofile.executors.local.fingerprint", lambda device: fp)
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue().replace(str(tmp), "<tmp>")


@pytest.mark.parametrize("name", sorted(CASES))
def test_prints_the_same_as_before(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    code, out = _run(name, tmp_path, monkeypatch)
    assert code == expected["exit_code"]
    assert out.splitlines() == expected["stdout"].splitlines()


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    import os
    import tempfile

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for case in sorted(CASES):
        with tempfile.TemporaryDirectory() as d:
            code, out = _run(case, Path(d))
        (GOLDEN / f"{case}.json").write_text(json.dumps(
            {"argv": CASES[case], "exit_code": code, "stdout": out}, indent=1) + "\n")
        print(case, code, len(out.splitlines()), "lines")
