"""hwprofile import (issue 25): timm's result tables and any CSV as profiles of imported records.

The timm rows are real excerpts (tests/data/timm/README.md says which rows of which file and commit).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import hwprofile
from helpers import one_line_error
from hwprofile.analysis import Side, Verdict, answer, comparability, identity, join
from hwprofile.analysis._comparability import origin_mismatch
from hwprofile.cli import main
from hwprofile.errors import ConfigError, InputFileError, SchemaError
from hwprofile.profile import Profile, Record, TableFilter, count_rows, import_table, quality_of
from hwprofile.profile._table_import import MAX_ROWS, imported_settings, main_batch, parse, timm_file_settings
from hwprofile.zoo import CNN_FAMILIES, complexity, family, get_spec, is_cnn, model_names, source, zoo_name
from hwprofile.zoo._timm import ZOO, registry

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "timm"
GPU = DATA / "benchmark-infer-amp-nchw-pt291-cu128-4090.excerpt.csv"
CPU = DATA / "benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.excerpt.csv"
TIMM_HEADER = ("model,infer_img_size,infer_samples_per_sec,infer_step_time,infer_batch_size,param_count,"
               "infer_gmacs,infer_macts")


def _timm(tmp_path: Path, rows: list[str], name: str = "benchmark-infer-amp-nchw-pt291-cu128-4090.csv",
          header: str = TIMM_HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _cnn_main(path: Path = GPU, device: str = "rtx4090"):
    return import_table(path, device_name=device, preset="timm", filters=TableFilter(families=("cnn",), batch="main"))


# ------------------------------------------------------------------------------------------------ the records

def test_timm_rows_become_records_that_say_they_are_imported():
    result = import_table(GPU, device_name="rtx4090", preset="timm")
    records = result.records
    assert len(records) == 62  # every row of the excerpt
    assert {r.runner for r in records} == {"imported:timm"}
    assert all(r.imported and r.source == "imported" and r.device_id == "rtx4090" for r in records)
    assert {r.precision for r in records} == {"fp16"}  # amp: float16 autocast
    r = next(r for r in records if r.model == "resnet50@224")
    # the row: resnet50,224,4302.84,237.959,1024,25.56,4.11,11.11
    assert (r.batch, r.resolution, r.flops, r.params, r.acts) == (1024, 224, 4_110_000_000, 25_560_000, 11_110_000)
    assert r.median_ms == 237.959 and r.throughput.samples_per_s == 4302.84
    assert "infer_step_time" in r.latency.timing_method and r.latency.timing_method.startswith("imported")
    assert r.latency.samples_ms == [] and r.latency.repeats is None  # one figure per row: nothing to weigh
    settings = r.settings.to_dict()
    assert settings["compile"] is False and settings["channels_last"] is False
    assert settings["imported"]["line"] > 1


def test_the_fingerprint_records_the_source():
    result = _cnn_main()
    fp = result.profile.devices["rtx4090"].fingerprint()
    src = fp["imported"]
    assert fp["kind"] == "imported"
    assert src["file"] == GPU.name and src["sha256"] == hashlib.sha256(GPU.read_bytes()).hexdigest()
    assert src["preset"] == "timm" and src["columns"]["flops_g"] == "infer_gmacs"
    assert src["columns"]["acts_m"] == "infer_macts" and src["columns"]["latency_ms"] == "infer_step_time"
    assert src["precision"] == {"value": "fp16", "from": "file name: amp (float16 autocast)"}
    assert src["filters"] == {"families": ["cnn"], "batch": "main"}
    assert src["rows"]["rows"] == 62 and src["rows"]["batch"] == 1024 and src["rows"]["kept"] == 34
    assert src["timm_registry"]["commit"] == source()["commit"]
    assert "fvcore" in src["conventions"] and src["like_runner"] == "torch:cuda"


def test_a_saved_import_loads_back_unchanged(tmp_path):
    result = _cnn_main()
    path = result.profile.save(tmp_path / "p.json")
    back = Profile.load(path)
    assert [r.to_dict() for r in back.records] == [r.to_dict() for r in result.records]
    assert back.devices["rtx4090"].fingerprint()["imported"] == result.source


def test_an_imported_record_cannot_pose_as_a_measurement():
    r = _cnn_main().records[0]
    with pytest.raises(SchemaError, match="disagree"):
        Record.from_dict({**r.to_dict(), "runner": "torch:cuda"})
    with pytest.raises(SchemaError, match="disagree"):
        Record.from_dict({**r.to_dict(), "source": "zoo"})


def test_imported_records_get_no_quality_grade():
    assert all(quality_of(r) is None for r in _cnn_main().records)


# ------------------------------------------------------------------------------------------------ filters

def test_the_cnn_filter_drops_vits_hybrids_attention_heads_and_test_models():
    kept = {r.model.split("@")[0] for r in import_table(GPU, device_name="x", preset="timm",
                                                        filters=TableFilter(families=("cnn",))).records}
    for name in ("vit_base_patch16_224", "mobilenetv4_hybrid_medium", "resnet50_clip", "test_byobnet",
                 "levit_256", "caformer_m36"):
        assert name not in kept
    assert {"resnet50", "efficientnet_b0", "regnetx_002", "resnext50_32x4d"} <= kept


def test_main_batch_is_the_most_common_one_and_filters_compose():
    result = import_table(GPU, device_name="x", preset="timm", filters=TableFilter(batch="main"))
    assert {r.batch for r in result.records} == {1024} and len(result.records) == 54
    only512 = import_table(GPU, device_name="x", preset="timm", filters=TableFilter(batch=512))
    assert {r.batch for r in only512.records} == {512} and len(only512.records) == 3
    globbed = import_table(GPU, device_name="x", preset="timm",
                           filters=TableFilter(models=("resnet*",), exclude=("*_clip", "resnetv2*")))
    assert {r.model.split("@")[0] for r in globbed.records} == {"resnet50", "resnet50d"}
    fam = import_table(GPU, device_name="x", preset="timm", filters=TableFilter(families=("regnet",)))
    assert {family(r.model) for r in fam.records} == {"regnet"}


def test_main_batch_ties_go_to_the_larger_batch():
    rows = parse("m,b,ms\na,1,1\nb,8,1\n", {"model": "m", "batch": "b", "latency_ms": "ms"}, "t.csv")
    assert main_batch(rows) == 8


def test_timm_families_come_from_timm_source():
    assert registry()["resnet50"] == "resnet" and family("resnet50.a1_in1k") == "resnet"
    assert family("vit_base_patch16_224") == "vision_transformer" and family("no_such_model") is None
    assert len(source()["commit"]) == 40
    assert CNN_FAMILIES <= set(registry().values())
    assert is_cnn("efficientnet_b0") and is_cnn("regnety_040") and is_cnn("resnet50_clip_gap")
    assert not is_cnn("resnet50_clip") and not is_cnn("mobilenetv4_hybrid_large")
    assert not is_cnn("deit_small_patch16_224")


# ------------------------------------------------------------------------------------------------ counts

def test_every_zoo_mapping_names_a_zoo_model_and_a_timm_model():
    assert set(ZOO.values()) <= set(model_names())
    assert set(ZOO) <= set(registry())
    assert zoo_name("regnetx_002") == "RegNetX-200MF" and zoo_name("efficientnet_b0") == "EfficientNet-B0"
    assert zoo_name("resnet50") == "ResNet-50" and zoo_name("tf_efficientnet_b0") is None


def test_zoo_models_carry_hwprofiles_counts_at_the_rows_resolution():
    rows = {c["model"]: c for c in count_rows(import_table(GPU, device_name="x", preset="timm").records)}
    r224, r160 = rows["resnet50@224"], rows["resnet50@160"]
    assert r224["zoo_model"] == "ResNet-50" and r224["flops_hwprofile"] == 4_089_185_256
    assert r224["params_hwprofile"] == 25_557_032 and r224["acts_hwprofile"] == 11_315_688
    assert r160["flops_hwprofile"] == complexity(get_spec("ResNet-50"), resolution=160).flops
    assert rows["efficientnet_b0@224"]["acts_hwprofile"] == 6_748_036
    assert {c["zoo_model"] for c in rows.values()} >= {"RegNetX-200MF", "RegNetY-200MF", "RegNetY-4.0GF",
                                                      "EfficientNet-B0", "ResNeXt-50"}


def test_timms_counts_differ_from_pyclss_as_docs_results_says():
    """fvcore (timm) = pycls's multiply-adds - bias adds + 2 per batch-norm element + 1 per global-pool input;
    its activations leave out the stem's max-pool. Checked on ResNet-50 at 224 (timm rounds to 0.01 G/M)."""
    r = next(r for r in import_table(GPU, device_name="x", preset="timm").records if r.model == "resnet50@224")
    cx = complexity(get_spec("ResNet-50"))
    maxpool = 64 * 56 * 56
    conv_outputs = cx.acts - maxpool - 1000  # every conv is followed by a batch norm; 1000 = the FC's outputs
    fvcore_flops = cx.flops - 1000 + 2 * conv_outputs + 2048 * 7 * 7
    assert abs(r.flops - fvcore_flops) <= 0.005e9
    assert abs(r.acts - (cx.acts - maxpool)) <= 0.005e6
    assert r.params == round(cx.params / 1e4) * 1e4


def test_only_zoo_models_at_their_training_resolution_join_as_zoo_records():
    records = {r.model: r for r in import_table(GPU, device_name="x", preset="timm").records}
    assert imported_settings(records["resnet50@224"])["joins_as"] == {"model": "ResNet-50", "runner": "torch:cuda"}
    assert "joins_as" not in imported_settings(records["resnet50@160"])
    assert identity(records["resnet50@224"]) == ("ResNet-50", None, 1.0, 1024, "torch:cuda", "fp16", "infer")
    assert identity(records["resnet50@160"])[:1] == ("resnet50@160",)


# ------------------------------------------------------------------------------------------------ the verdict

def test_the_cnn_rows_at_the_main_batch_get_a_verdict_with_intervals():
    rows = answer(_cnn_main().records)
    assert len(rows) == 1
    a = rows[0]
    assert a.runner == "imported:timm" and a.batch == 1024 and a.n_used == 34
    assert a.excluded == () and a.equal_weights  # imported rows carry no spread: equal weights
    assert a.verdict in set(Verdict)
    for e in (a.beta_flops, a.beta_acts, a.delta):
        assert e is not None and e.low <= e.value <= e.high
    assert a.share_acts is not None and 0 <= a.share_acts.low <= a.share_acts.high <= 1


def test_import_then_show_on_the_cli(tmp_path, capsys):
    out = tmp_path / "rtx4090.json"
    code = main(["import", str(GPU), "--preset", "timm", "--device-name", "rtx4090", "--family", "cnn",
                 "--batch", "main", "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "imported 34 records" in captured.err and "next: hwprofile show" in captured.err
    assert "ResNet-50" in captured.out and "table/hw" in captured.out
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    verdict_line = next(line for line in shown.splitlines() if line.startswith("imported:timm  1024"))
    assert verdict_line.split()[-1] in {v.value for v in Verdict} and verdict_line.count("[") >= 3  # β's and δ
    assert "of time scales with activations" in shown
    assert "Imported records of zoo models" in shown and "each weighs the same" in shown
    assert main(["show", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["follows"][0]["verdict"] and data["imported_counts"]


@pytest.mark.slow
def test_the_import_path_loads_no_torch_or_onnx(tmp_path):
    out = tmp_path / "p.json"
    code = ("import sys; from hwprofile.cli import main; "
            f"rc = main(['import', {str(GPU)!r}, '--preset', 'timm', '--device-name', 'g', '-o', {str(out)!r}]); "
            "rc = rc or main(['show', " + repr(str(out)) + "]); "
            "print(rc, sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stderr[-2000:]


def test_timm_file_names_say_precision_layout_and_compile():
    assert timm_file_settings("benchmark-infer-amp-nhwc-pt240-cu124-rtx4090.csv") == {
        "precision_token": "amp", "channels_last": True, "compile": False, "device_type": "cuda"}
    cpu = timm_file_settings(CPU.name)
    assert cpu["device_type"] == "cpu" and cpu["compile"] is True and cpu["precision_token"] == "fp32"
    records = import_table(CPU, device_name="i7", preset="timm").records
    assert {r.precision for r in records} == {"fp32"} and {r.batch for r in records} == {1}
    assert imported_settings(next(r for r in records if r.model == "resnet50@224"))["joins_as"]["runner"] == "torch:cpu"


# ------------------------------------------------------------------------------------------------ any CSV

def test_a_column_mapping_reads_any_csv_with_units(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("name,secs,gmacs,macts,mparams,px\nResNet-50,0.5,4.09,11.3,25.6,224\nnet-b,0.25,1,2,3,224\n")
    result = import_table(path, device_name="a100", columns={"model": "name", "latency_s": "secs",
                                                             "flops_g": "gmacs", "acts_m": "macts",
                                                             "params_m": "mparams", "resolution": "px"},
                          precision="fp16", batch_size=8)
    r = {r.model: r for r in result.records}
    assert r["ResNet-50@224"].median_ms == 500.0 and r["ResNet-50@224"].batch == 8
    assert r["ResNet-50@224"].throughput.samples_per_s == 16.0
    assert r["net-b@224"].flops == 1_000_000_000 and r["net-b@224"].acts == 2_000_000
    assert {x.runner for x in result.records} == {"imported:csv"}
    assert result.source["batch_size"] == 8 and result.source["preset"] is None
    assert "column 'secs'" in r["net-b@224"].latency.timing_method


def test_samples_per_second_alone_gives_the_latency(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("m,b,ips\nx,4,200\n")
    r = import_table(path, device_name="d", columns={"model": "m", "batch": "b", "samples_per_s": "ips"},
                     precision="fp32").records[0]
    assert r.median_ms == pytest.approx(20.0) and r.flops is None and r.resolution == 0


def test_an_empty_count_is_not_counted(tmp_path):
    path = _timm(tmp_path, ["a,224,100,10,1,1.0,,0"])
    r = import_table(path, device_name="d", preset="timm").records[0]
    assert r.flops is None and r.acts is None and r.params == 1_000_000


# ------------------------------------------------------------------------------------------------ bad tables

def _cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(["import", *argv])
    return code, capsys.readouterr().err


BAD = [
    ("missing column", lambda p: _timm(p, ["a,224,1,1,1,1,1,1"], header=TIMM_HEADER.replace("infer_gmacs", "gmacs")),
     "lacks column(s) ['infer_gmacs']"),
    ("non-numeric", lambda p: _timm(p, ["a,224,1,1,1,1,abc,1"]), "column 'infer_gmacs' is 'abc'"),
    ("nan", lambda p: _timm(p, ["a,224,1,1,1,1,nan,1"]), "expected a number >= 0"),
    ("negative", lambda p: _timm(p, ["a,224,1,1,1,-1,1,1"]), "column 'param_count' is '-1'"),
    ("zero latency", lambda p: _timm(p, ["a,224,1,0,1,1,1,1"]), "expected a number > 0"),
    ("fractional batch", lambda p: _timm(p, ["a,224,1,1,1.5,1,1,1"]), "column 'infer_batch_size' is '1.5'"),
    ("empty model", lambda p: _timm(p, [",224,1,1,1,1,1,1"]), "expected a model name"),
    ("long model name", lambda p: _timm(p, ["x" * 300 + ",224,1,1,1,1,1,1"]), "(1-200 characters)"),
    ("count past 64 bits", lambda p: _timm(p, ["a,224,1,1,1,1,1e30,1"]), "out of range"),
    ("batch past the limit", lambda p: _timm(p, ["a,224,1,1,1e9,1,1,1"]), "out of range"),
    ("duplicate rows", lambda p: _timm(p, ["a,224,1,1,8,1,1,1", "b,224,1,1,8,1,1,1", "a,224,2,2,8,1,1,1"]),
     "lines 2 and 4 both hold a at 224 px, batch 8"),
    ("short row", lambda p: _timm(p, ["a,224,1,1,1,1,1"]), "line 2 has 7 cells; its header has 8"),
    ("header only", lambda p: _timm(p, []), "has a header but no data rows"),
    ("empty file", lambda p: (p / "benchmark-infer-amp-x.csv").open("w").close() or p / "benchmark-infer-amp-x.csv",
     "is empty"),
    ("not utf-8", lambda p: (p / "benchmark-infer-amp-x.csv").write_bytes(b"model\n\xff\xfe,1\n")
     and p / "benchmark-infer-amp-x.csv", "is not UTF-8"),
    ("nul bytes", lambda p: (p / "benchmark-infer-amp-x.csv").write_bytes(TIMM_HEADER.encode() + b"\na\x00,1\n")
     and p / "benchmark-infer-amp-x.csv", "NUL"),
    ("bf16", lambda p: _timm(p, ["a,224,1,1,1,1,1,1"], name="benchmark-infer-bf16-nchw-pt291.csv"),
     "precision 'bf16' is not one hwprofile records"),
]


@pytest.mark.parametrize("case,make,needle", BAD, ids=[b[0] for b in BAD])
def test_malformed_tables_are_one_line_errors(tmp_path, capsys, case, make, needle):
    path = make(tmp_path)
    code, err = _cli(capsys, str(path), "--preset", "timm", "--device-name", "d", "-o", str(tmp_path / "o.json"))
    one_line_error(code, err, needle)
    assert not (tmp_path / "o.json").exists()


@pytest.mark.slow
def test_a_million_rows_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write("m,b,ms\n")
        f.writelines(f"m{i},1,1\n" for i in range(1_000_000))
    code, err = _cli(capsys, str(path), "--map", "model=m,batch=b,latency_ms=ms", "--precision", "fp32",
                     "--device-name", "d", "-o", str(tmp_path / "o.json"))
    one_line_error(code, err, f"has more than {MAX_ROWS:,} data rows")


@pytest.mark.parametrize("argv,needle", [
    (["--device-name", "d"], "--preset timm or --map"),
    (["--map", "model=m,latency=ms", "--device-name", "d"], "unknown column field 'latency'"),
    (["--map", "modelm", "--device-name", "d"], "is not FIELD=COLUMN"),
    (["--map", "batch=b,latency_ms=ms", "--device-name", "d", "--precision", "fp32"], "no model column"),
    (["--map", "model=m,batch=b", "--device-name", "d", "--precision", "fp32"], "no latency or throughput"),
    (["--map", "model=m,batch=b,latency_ms=ms", "--device-name", "d"], "say which precision"),
    (["--map", "model=m,latency_ms=ms", "--device-name", "d", "--precision", "fp32"], "no batch column"),
    (["--preset", "timm", "--device-name", "bad name!"], "device name 'bad name!'"),
    (["--preset", "timm", "--device-name", "d", "--family", "transformers"], "unknown family 'transformers'"),
    (["--preset", "timm", "--device-name", "d", "--batch", "0"], "--batch '0'"),
    (["--preset", "timm", "--device-name", "d", "--batch", "3"], "no row is left after the filters"),
    (["--preset", "timm", "--device-name", "d", "--like-runner", "nope"], "unknown runner 'nope'"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, needle):
    table = tmp_path / "t.csv"
    table.write_text("m,b,ms\nx,1,2\n")
    name = str(GPU) if "--preset" in argv else str(table)
    code, err = _cli(capsys, name, *argv, "-o", str(tmp_path / "o.json"))
    one_line_error(code, err, needle)


def test_a_missing_file_and_an_unknown_preset(tmp_path, capsys):
    code, err = _cli(capsys, str(tmp_path / "none.csv"), "--preset", "timm", "--device-name", "d")
    one_line_error(code, err, "does not exist")
    code, err = _cli(capsys, str(GPU), "--preset", "mlperf", "--device-name", "d")
    assert code == 2 and "invalid choice" in err
    with pytest.raises(ConfigError, match="unknown preset"):
        import_table(GPU, device_name="d", preset="mlperf")
    with pytest.raises(InputFileError):
        parse("", {"model": "m", "latency_ms": "ms"}, "e.csv", 1)


def test_nothing_saved_is_overwritten(tmp_path, capsys):
    out = tmp_path / "p.json"
    out.write_text("keep me")
    code, err = _cli(capsys, str(GPU), "--preset", "timm", "--device-name", "d", "-o", str(out))
    one_line_error(code, err, "already exists")
    assert out.read_text() == "keep me"
    code, _ = _cli(capsys, str(GPU), "--preset", "timm", "--device-name", "d", "-o", str(out), "--force")
    assert code == 0 and Profile.load(out).records


# ------------------------------------------------------------------------------------------------ compare, check

def _measured(device: str = "cuda-h100") -> Profile:
    """A measured torch:cuda profile of ResNet-50 and EfficientNet-B0 at batch 1024 (fp16)."""
    records = []
    for name, ms in (("ResNet-50", 120.0), ("EfficientNet-B0", 60.0)):
        cx = complexity(get_spec(name))
        records.append(Record(
            device_id=device, model=name, strategy=None, scale=1.0, batch=1024, runner="torch:cuda",
            precision="fp16", mode="infer", resolution=224, flops=cx.flops, params=cx.params, acts=cx.acts,
            status="ok", latency={"median_ms": ms, "samples_ms": [[ms, ms * 1.01, ms * 0.99]] * 3,
                                  "medians_ms": [ms] * 3, "repeats": 3, "timing_method": "cuda_event"},
            throughput={"samples_per_s": 1024e3 / ms}, settings={"compile": False, "channels_last": False}))
    return Profile(devices={device: {"id": device, "device": "NVIDIA H100"}}, records=records)


def test_comparability_refuses_imported_against_measured():
    imported = _cnn_main(device="rtx4090").profile
    measured = _measured()
    pairs = join(imported.records, measured.records, cross_device=True).pairs
    assert {rb.model for rb, _ in pairs} == {"resnet50@224", "efficientnet_b0@224"}
    found = origin_mismatch(pairs)
    assert found and found.severity == "refuse" and found.records == 2
    assert found.text() == "origin records: imported vs measured in 2 records"
    side = (lambda p, d: Side(d, d, p.device(d).fingerprint(), tuple(p.records)))
    assert any(m.kind == "origin" for m in comparability(side(imported, "rtx4090"), side(measured, "cuda-h100"),
                                                          pairs))
    two_imports = join(imported.records, imported.records).pairs
    assert origin_mismatch(two_imports) is None


def test_compare_refuses_unless_asked(tmp_path, capsys):
    a, b = tmp_path / "timm.json", tmp_path / "h100.json"
    _cnn_main(device="rtx4090").profile.save(a)
    _measured().save(b)
    code = main(["compare", str(a), str(b)])
    err = capsys.readouterr().err
    one_line_error(code, err, "origin records: imported vs measured in 2 records")
    assert main(["compare", str(a), str(b), "--allow-mismatch", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["comparisons"]
    assert {r["label"] for r in data[0]["rows"]} == {"resnet50@224", "efficientnet_b0@224"}


def test_two_imported_devices_compare_without_refusal(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _cnn_main(device="rtx4090").profile.save(a)
    _cnn_main(device="rtx4090-again").profile.save(b)
    assert main(["compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["comparisons"]
    assert len(data[0]["rows"]) == 34 and not [w for w in data[0]["warnings"] if "origin" in w]


def test_check_refuses_to_gate_imported_against_measured_unless_asked():
    imported = _cnn_main(device="cuda-h100").profile  # named like the measured device: the gate would join them
    with pytest.raises(ConfigError, match="origin records: imported vs measured"):
        hwprofile.check(imported, _measured())
    result = hwprofile.check(imported, _measured(), allow_mismatch=True)
    gated = {v.label for v in result.verdicts if v.metric == "latency"}
    assert gated == {"resnet50@224", "efficientnet_b0@224"}
    assert "warning: baseline vs current: origin records: imported vs measured in 2 records" in result.messages
    assert not [m for m in result.messages if "imported.columns" in m]  # the source's details are bookkeeping
