import json
import subprocess
import sys

import pytest


def test_complexity_json_effnet_b0(cli):
    code, out, _ = cli("complexity", "EfficientNet-B0", "--json")
    assert code == 0
    rec = json.loads(out)
    assert (rec["flops"], rec["params"], rec["acts"]) == (385825092, 5288548, 6748036)
    for key in ("model", "strategy", "scale", "resolution", "depths", "widths", "group_widths", "flops_ratio"):
        assert key in rec
    assert rec["flops_ratio"] == 1.0 and rec["flops_unit"] == "multiply-adds"


def test_complexity_scaled(cli):
    code, out, _ = cli("complexity", "regnety-4.0gf", "--strategy", "dWr", "--scale", "4", "--json")
    rec = json.loads(out)
    assert code == 0 and rec["depths"] == [2, 7, 14, 2] and rec["group_widths"] == [112] * 4
    assert rec["resolution"] == 240 and round(rec["flops_ratio"], 2) == 3.93


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv"])
def test_formats(cli, fmt):
    code, out, _ = cli("models", "--format", fmt)
    assert code == 0 and "EfficientNet-B0" in out and "RegNetZ-4GF" in out


def test_models_json(cli):
    code, out, _ = cli("models", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["models"]) == 38


def test_scale_reports_achieved_ratios_and_exponents(cli):
    code, out, _ = cli("scale", "EfficientNet-B0", "--strategies", "w,dw,dwr,dWr", "--scales", "1,2,4,16", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["rows"]) == 16
    exps = {e["strategy"]: e for e in data["exponents"]}
    assert exps["w"]["acts_exponent"] == pytest.approx(0.5, abs=0.05)
    assert exps["dWr"]["acts_exponent"] == pytest.approx(0.6, abs=0.05)
    assert exps["dWr"]["acts_exponent_theory"] == pytest.approx(0.6)
    assert any(abs(r["flops_ratio"] - r["scale"]) > 0.1 for r in data["rows"])  # achieved, not assumed


@pytest.mark.parametrize("argv,needle", [
    (["complexity", "RegNetY-4GF"], "did you mean"),
    (["complexity", "EfficientNet-B0", "--strategy", "xyz", "--scale", "2"], "unknown strategy"),
    (["complexity", "EfficientNet-B0", "--strategy", "w", "--scale", "0"], "finite number > 0"),
    (["complexity", "EfficientNet-B0", "--strategy", "w", "--scale", "nan"], "finite number > 0"),
    (["complexity", "EfficientNet-B0", "--strategy", "w", "--scale", "inf"], "finite number > 0"),
    (["complexity", "EfficientNet-B0", "--strategy", "r", "--scale", "1e-5"], "collapses"),
    (["complexity", "EfficientNet-B0", "--scale", "2"], "needs --strategy"),
    (["scale", "EfficientNet-B0", "--scales", "1,x"], "not a number"),
    (["models", "--format", "xml"], "invalid choice"),
    (["nosuchcommand"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(cli, argv, needle):
    code, out, err = cli(*argv)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_import_does_not_pull_heavy_libraries():
    code = ("import sys, hwprofile, hwprofile.cli; hwprofile.cli.build_parser(); "
            "bad = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_help_works_without_torch_onnxruntime_tensorrt():
    code = ("import sys; [sys.modules.__setitem__(m, None) for m in ('torch', 'onnxruntime', 'tensorrt')]; "
            "from hwprofile.cli import main; sys.exit(main(['--help']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "complexity" in proc.stdout, proc.stderr
