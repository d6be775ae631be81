"""The GPU workflow template must not rot: its ``hwprofile`` commands run here with ``--device cpu``.

The template is read as text (its ``run:`` steps), each ``hwprofile`` line is rewritten for this
CPU box (``cuda:0`` -> ``cpu``, a one-record sweep) and executed as a subprocess, in the order of
the workflow, with the workflow's environment variables pointing into a temporary folder.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import has_cuda

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-profile.yml"
SCRIPT = ROOT / "scripts" / "gpu-validate.sh"
SHRINK = {"--runners": "ort:cpu", "--models": "RegNetX-200MF", "--scales": "1", "--batch-sizes": "1",
          "--repeats": "2"}


def run_steps(text: str) -> list[str]:
    """The command lines of every ``run:`` step, one-line or block (``run: |``)."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2).strip()
        if rest not in ("|", ">"):
            out.append(rest)
            continue
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            if lines[i].strip():
                out.append(lines[i].strip())
            i += 1
    return out


def hwprofile_commands() -> list[str]:
    return [c for c in run_steps(WORKFLOW.read_text()) if c.startswith("hwprofile ")]


def for_cpu(command: str, env: dict) -> list[str]:
    """argv for this box: cuda:0 -> cpu, a one-record sweep, variables expanded."""
    argv = [_expand(a, env) for a in shlex.split(command.replace("cuda:0", "cpu"))]
    argv = [a for a in argv if a != ""]  # an empty $UPDATE_BASELINE disappears, as in the shell
    for i, a in enumerate(argv[:-1]):
        if a in SHRINK:
            argv[i + 1] = SHRINK[a]
    if argv[1] == "run":
        argv += ["--seconds-per-config", "0.3"]
    if argv[1] in ("run", "check"):  # a shared CI runner may be busy: no back-off and re-measuring of its records
        argv += ["--retries", "0"]
    return argv


def _expand(arg: str, env: dict) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), arg)


def test_template_structure():
    text = WORKFLOW.read_text()
    steps = run_steps(text)
    assert re.search(r"runs-on:\s*\[self-hosted, linux, gpu\]", text)
    assert any('pip install -e ".[gpu' in s for s in steps), "installs with the GPU extra"
    assert any('-m "gpu or trt"' in s for s in steps), "runs the gpu and trt tests"
    cmds = hwprofile_commands()
    assert any(c.startswith("hwprofile run --device cuda:0") for c in cmds)
    assert any(c.startswith("hwprofile check --baseline") and "--junit" in c for c in cmds)
    assert "actions/upload-artifact" in text and "runs/" in text
    assert "${{ github.run_id }}" in text and "update_baseline" in text and "inputs.calibrate" in text


def test_template_commands_parse_with_this_hwprofile():
    """Every hwprofile line parses with the current CLI (options that vanished fail here, fast)."""
    from hwprofile.cli import build_parser

    parser = build_parser()
    env = {"PROFILE": "p.json", "BASELINE": "b.json", "UPDATE_BASELINE": ""}
    for command in hwprofile_commands():
        args = parser.parse_args(for_cpu(command, env)[1:])
        assert args.handler is not None


@pytest.mark.slow
def test_template_commands_run_on_cpu(tmp_path):
    """The workflow's hwprofile steps, run for real on this CPU: profile, first-use baseline, gate."""
    env = {**os.environ, "PROFILE": str(tmp_path / "runs" / "gpu-profile-1.json"),
           "BASELINE": str(tmp_path / "profiles" / "ci-baseline.json"), "UPDATE_BASELINE": "",
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}

    def run(argv):
        proc = subprocess.run([sys.executable, "-m", "hwprofile", *argv[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        return proc.returncode, proc.stdout, proc.stderr

    commands = hwprofile_commands()
    assert [shlex.split(c)[1] for c in commands] == ["devices", "run", "check", "check"]
    assert "--calibrate" in commands[-1]
    for command in commands:
        if "--calibrate" in command:  # a later, hand-triggered workflow run: this commit profiled again
            env["PROFILE"] = str(tmp_path / "runs" / "gpu-profile-2.json")
            code, out, err = run(for_cpu(commands[1], env))
            assert code == 0, err
        argv = for_cpu(command, env)
        if argv[1] == "check" and "--calibrate" not in argv:  # first use: the documented --update-baseline run
            code, _, err = run(argv + ["--update-baseline"])
            assert code == 0 and "saved" in err, err
        code, out, err = run(argv)
        assert code == 0, f"{' '.join(argv)}\n{out}\n{err}"
    assert Path(env["PROFILE"]).is_file() and Path(env["BASELINE"]).is_file()
    gate = json.loads(Path(env["BASELINE"]).read_text())["gate"]
    assert [list(g["thresholds"]) for g in gate.values()] == [["ort:cpu"]]  # the calibration step ran
    (observed,) = [o for g in gate.values() for o in g["sessions"][0]["observations"] if o["metric"] == "latency"]
    assert observed["drift_max"] > 0  # a real second measurement, not the baseline's own numbers
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and int(suite.get("tests")) >= 1
    assert "hwprofile check: PASS" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


@pytest.mark.slow
def test_gpu_validate_script_on_a_machine_without_gpu(tmp_path):
    """scripts/gpu-validate.sh downloads nothing (its one pip install takes carried wheels, --no-index) and,
    without a GPU, says what it could not try (exit 3)."""
    text = SCRIPT.read_text()
    installs = [line for line in text.splitlines() if "pip install" in line and not line.lstrip().startswith("#")]
    assert installs and all("--no-index" in line for line in installs) and "apt" not in text
    from hwprofile import env

    if env.gpu_count() > 0 or has_cuda():
        pytest.skip("this machine has a GPU: the script would run the real validation")
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    for runner in ("torch:cuda", "ort:cuda", "ort:tensorrt", "trt"):
        assert re.search(rf"not tried: {re.escape(runner)}\b.*\S", out), out
    assert not list(ROOT.glob("profiles/*validate*"))




def _no_gpu_here() -> None:
    from hwprofile import env

    if env.gpu_count() > 0 or has_cuda():
        pytest.skip("this machine has a GPU: the script would run the real validation")


def test_gpu_validate_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_gpu_validate_quick_dry_run_writes_its_log_and_plan(tmp_path):
    """--quick --out-dir DIR: the log and the sweep's plan (which needs no GPU) land in DIR; without a GPU
    every runner is reported as not tried, with why."""
    _no_gpu_here()
    out_dir = tmp_path / "validate"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT), "--quick", "--dry-run", "--out-dir", str(out_dir)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    plan = json.loads((out_dir / "plan.json").read_text())
    assert len(plan["items"]) == 16 and plan["estimated_s"] > 0
    assert {(i["scale"], i["batch"]) for i in plan["items"]} == {(1.0, 1), (1.0, 32), (2.0, 1), (2.0, 32)}
    assert {i["model"] for i in plan["items"]} == {"EfficientNet-B0"}
    log = (out_dir / "validate.log").read_text()
    for runner in ("torch:cuda", "ort:cuda", "ort:tensorrt", "trt"):
        assert re.search(rf"not tried: {re.escape(runner)} - .*\S", log), log
    assert not (out_dir / "sweep.json").exists()


@pytest.mark.slow
def test_gpu_validate_runs_from_a_checkout_where_hwprofile_is_not_installed(tmp_path):
    """It changes to the repository root before checking that hwprofile imports: an interpreter without
    hwprofile installed still finds the checkout (and so do the children it starts)."""
    _no_gpu_here()
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(  # drop the editable install of hwprofile, keep its dependencies
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]\n"
        "sys.path_hooks[:] = [h for h in sys.path_hooks if '__editable__' not in getattr(h, '__module__', '')]\n")
    wrapper = tmp_path / "python-without-hwprofile"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={hide}${{PYTHONPATH:+:$PYTHONPATH}} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert subprocess.run([str(wrapper), "-c", "import hwprofile"], cwd=tmp_path, env=env,
                          capture_output=True).returncode != 0  # not installed, as on an offline GPU box
    proc = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=tmp_path, env={**env, "PYTHON": str(wrapper)},
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert "not importable" not in out and proc.returncode == 3, out
    assert re.search(r"not tried: trt - .*\S", out) and "Plan on cuda:0" in out, out
