"""The light core install (issue 21): ``pip install hwprofile`` with no extra reads saved profiles.

- pyproject.toml: the core dependencies name none of the heavy libraries of ``hwprofile._lazy.HEAVY`` (scipy
  aside: the verdict's t quantiles need it); [cpu] and [gpu] each hold all of [export]; every extra a missing
  library's hint names exists and installs that library.
- In a child where torch, onnx, onnxscript, onnxruntime and every other extra's library cannot be imported
  (``sys.modules[name] = None`` makes ``import name`` raise ImportError, as if it were not installed), the
  reading commands run on the committed profiles, exit 0 and print what they print with everything installed
  (the golden outputs).
- There, the commands that need one of those libraries (run, layers, export, counting an ONNX file) exit 3 with
  one line naming what to install, and write nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from hwprofile._lazy import HEAVY

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
INFER = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer.json"
TRAIN = "profiles/cpu-intel-xeon-2c__torch__fp32__train.json"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: the core install's own dependency among HEAVY (hwprofile.analysis._regression's t quantiles)
IN_CORE = {"scipy"}
#: what the light core lacks: every heavy library but scipy (hwprofile.models is hwprofile's own)
BLOCKED = tuple(sorted(set(HEAVY) - IN_CORE - {"hwprofile.models"}))
#: distribution names of import names that differ
DISTRIBUTION = {"pynvml": "nvidia-ml-py"}


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_core_dependencies_hold_no_heavy_library():
    core = _names(PROJECT["dependencies"])
    assert core & {canonicalize_name(DISTRIBUTION.get(m, m)) for m in BLOCKED} == set()
    assert {canonicalize_name(m) for m in IN_CORE} <= core


@pytest.mark.parametrize("extra", ["cpu", "gpu"], ids=["cpu_extra", "gpu_extra"])
def test_cpu_and_gpu_hold_the_export_extra(extra):
    extras = PROJECT["optional-dependencies"]
    assert {str(Requirement(r)) for r in extras["export"]} <= {str(Requirement(r)) for r in extras[extra]}


@pytest.mark.parametrize("library", BLOCKED)
def test_each_hint_names_an_extra_that_installs_the_library(library):
    """A hint names extras (``pip install -e ".[cpu]"``) that exist, and one of them installs the library;
    torch's also says to install torch itself first, pinned (an extra keeps the torch that is there)."""
    extras = PROJECT["optional-dependencies"]
    named = re.findall(r'pip install -e "\.\[([\w-]+)\]"', HEAVY[library])
    assert named, HEAVY[library]
    assert set(named) <= set(extras), named
    dist = canonicalize_name(DISTRIBUTION.get(library, library))
    assert any(dist in _names(extras[e]) for e in named), (library, named)
    if library == "torch":
        assert 'pip install "torch==' in HEAVY[library]


def _hwprofile(*argv: str, columns: int = 100, cache: Path | None = None) -> subprocess.CompletedProcess:
    """``hwprofile ARGV`` in a child that cannot import any library of BLOCKED (with an export cache of its own:
    a cached export needs no torch)."""
    code = ("import sys\n"
            f"for name in {BLOCKED!r}:\n"
            "    sys.modules[name] = None\n"
            "from hwprofile.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "COLUMNS": str(columns)}
    if cache is not None:
        env["HWPROFILE_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _golden(name: str) -> str:
    return json.loads((GOLDEN / f"{name}.json").read_text())["stdout"]


@pytest.mark.slow
@pytest.mark.parametrize("argv,golden", [
    (["show", INFER], "show-infer"),
    (["compare", INFER, INFER], "compare-infer-self"),
    (["check", "--baseline", INFER, INFER], "check-infer-self"),
    (["models"], "models"),
    (["scale", "EfficientNet-B0", "--strategies", "w,dw,dwr,dWr", "--scales", "1,2,4,16"], "scale"),
    (["predict", INFER, "RegNetY-4.0GF", "--strategy", "dWr", "--scale", "2"], "predict"),
    (["select", INFER, "--model", "EfficientNet-B0", "--max-latency-ms", "100"], "select"),
], ids=["show", "compare", "check", "models", "scale", "predict", "select"])
def test_reading_commands_print_what_they_print_with_everything_installed(argv, golden):
    res = _hwprofile(*argv)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines() == _golden(golden).splitlines()


@pytest.mark.slow
def test_show_json_and_complexity_run_without_the_heavy_libraries():
    shown = _hwprofile("show", INFER, "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert len(json.loads(shown.stdout)["records"]) == 28
    counted = _hwprofile("complexity", "EfficientNet-B0", "--json")
    assert counted.returncode == 0, counted.stderr[-2000:]
    rec = json.loads(counted.stdout)
    assert (rec["flops"], rec["params"], rec["acts"]) == (385825092, 5288548, 6748036)


def test_merge_of_the_committed_infer_and_train_profiles(tmp_path):
    out = tmp_path / "m.json"
    res = _hwprofile("merge", INFER, TRAIN, "-o", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    merged = json.loads(out.read_text())
    inputs = [json.loads((ROOT / p).read_text()) for p in (INFER, TRAIN)]
    assert len(merged["records"]) == sum(len(p["records"]) for p in inputs)


def _one_line_exit_3(res: subprocess.CompletedProcess, *needles: str) -> None:
    assert res.returncode == 3, (res.returncode, res.stderr[-2000:])
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert all(n in res.stderr for n in needles), res.stderr


TORCH_HINT = ('torch is not installed: pip install "torch==2.13.0" (a CPU or a CUDA build: docs/install.md), '
              'then pip install -e ".[cpu]" (pip install -e ".[gpu]" on a GPU machine)')


@pytest.mark.slow
def test_commands_that_need_torch_say_how_to_install_it(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    _one_line_exit_3(_hwprofile("run", "--device", "cpu", "--runners", "torch:cpu", "--models", "EfficientNet-B0",
                                "--out", str(out / "p.json"), cache=cache), TORCH_HINT)
    _one_line_exit_3(_hwprofile("layers", "EfficientNet-B0", "--runner", "torch:cpu", "--device", "cpu",
                                cache=cache), TORCH_HINT)
    _one_line_exit_3(_hwprofile("export", "EfficientNet-B0", "-o", str(out / "e.onnx"), cache=cache), TORCH_HINT)
    assert not any(out.iterdir())  # nothing written


@pytest.mark.slow
def test_commands_that_need_onnx_or_onnxruntime_say_which_extra(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read: onnx is missing")
    _one_line_exit_3(_hwprofile("complexity", str(model)),
                     'onnx is not installed: pip install -e ".[export]" (install torch first: docs/install.md)')
    _one_line_exit_3(_hwprofile("run", "--device", "cpu", "--runners", "ort:cpu", "--models", "EfficientNet-B0",
                                "--out", str(out / "p.json"), cache=cache),
                     'onnxruntime is not installed: pip install -e ".[cpu]" or pip install -e ".[gpu]", never both')
    assert not any(out.iterdir())  # nothing written
