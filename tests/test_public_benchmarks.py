"""scripts/public_benchmarks.py (docs/results.md, "What public benchmarks say") and scripts/timm_models.py, run on
the committed excerpts of timm's files."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "timm"
GPU = DATA / "benchmark-infer-amp-nchw-pt291-cu128-4090.excerpt.csv"
CPU = DATA / "benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.excerpt.csv"
SCRIPT = ROOT / "scripts" / "public_benchmarks.py"


def _script():
    spec = importlib.util.spec_from_file_location("public_benchmarks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_prints_one_row_per_device_with_the_verdict_and_the_sources():
    done = subprocess.run([sys.executable, str(SCRIPT), str(GPU), str(CPU), "--commit", "aa4b5850c154"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    rows = [line for line in out.splitlines() if line.startswith("| 4090 ") or line.startswith("| i7_12700h ")]
    assert len(rows) == 2
    gpu, cpu = rows
    assert "| GPU | amp, pt291 | 1024 | 34 (of 62) |" in gpu and "| CPU | fp32, pt240, dynamo | 1 |" in cpu
    assert all("**" in r and r.count("[") >= 3 for r in rows)  # a verdict and two elasticities, each with an interval
    assert "| resnet50 | ResNet-50 | 224 | 1.005 | 1.000 | 0.982 |" in out  # timm's count / hwprofile's
    assert "commit `aa4b5850c154`" in out and f"`{GPU.name}` (sha256 `" in out
    assert "Method: hwprofile.analysis" in out


def test_answer_is_the_scripts_only_call_to_the_analysis():
    tree = ast.parse(SCRIPT.read_text())
    analysis_names = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                      and node.module == "hwprofile.analysis" for a in node.names}
    callers = {fn.name for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
               for node in ast.walk(fn) if isinstance(node, ast.Name) and node.id in analysis_names - {"CONFIDENCE"}}
    assert callers == {"answer"}


def test_one_file_per_device_newest_eager_nchw():
    pick = _script().pick
    names = ["benchmark-infer-amp-nchw-pt113-cu117-rtx3090.csv", "benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
             "benchmark-infer-amp-nhwc-pt240-cu124-rtx3090.csv", "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv",
             "benchmark-infer-amp-nchw-pt291-cu128-4090-dynamo.csv", "benchmark-infer-amp-nchw-pt291-cu128-4090.csv",
             "benchmark-infer-bf16-nchw-pt291-cu130-pro6000maxq-dynamo.csv",
             "benchmark-infer-fp32-nchw-pt221-cpu-i9_10940x-dynamo.csv",
             "benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv"]
    assert pick(names) == ["benchmark-infer-amp-nchw-pt240-cu124-rtx3090.csv",
                           "benchmark-infer-amp-nchw-pt291-cu128-4090.csv",
                           "benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv"]


def test_timm_models_reads_registered_names_from_a_checkout(tmp_path):
    repo = tmp_path / "timm"
    (repo / "timm" / "models").mkdir(parents=True)
    (repo / "timm" / "models" / "toynet.py").write_text(
        "@register_model\ndef toynet_a(pretrained=False):\n    pass\n\n"
        "@register_model\ndef toynet_b(**kw):\n    pass\n")
    (repo / "timm" / "models" / "_registry.py").write_text("@register_model\ndef hidden(): pass\n")
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, capture_output=True)
    out = tmp_path / "m.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "timm_models.py"), str(repo), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["families"] == {"toynet": ["toynet_a", "toynet_b"]} and len(data["source"]["commit"]) == 40
