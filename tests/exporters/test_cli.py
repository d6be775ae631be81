"""``hwprofile export`` and ``hwprofile complexity FILE.onnx``."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _foreign(tmp_path, name="foreign.onnx", dims=("N", 3, 32, 32), unknown=True, x_dtype=TensorProto.FLOAT) -> str:
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])]
    out = "y"
    if unknown:
        nodes.append(helper.make_node("Foo", ["y"], ["z"], domain="com.example"))
        out = "z"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", x_dtype, list(dims))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    path = tmp_path / name
    onnx.save(model, path)
    return str(path)


@pytest.mark.slow
def test_export_json_and_table(cli, onnx_cache, tmp_path, b0):
    out_file = tmp_path / "b0.onnx"
    code, out, err = cli("export", "EfficientNet-B0", "-o", str(out_file), "--cache-dir", str(onnx_cache), "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["path"] == str(out_file) and out_file.is_file() and rec["sha256"] == b0.sha256
    assert rec["input_shape"] == ["batch", 3, 224, 224] and rec["verification"]["passed"] is True
    assert rec["folded_bn_count"] == 49 and rec["versions"]["torch"]
    code, out, _ = cli("export", "EfficientNet-B0", "-o", str(out_file), "--cache-dir", str(onnx_cache))
    assert code == 0 and "Verification" in out and "PASSED" in out and "rms_err" in out


@pytest.mark.slow
def test_complexity_of_an_export_equals_the_zoo_counts(cli, onnx_cache, tmp_path):
    f = tmp_path / "scaled.onnx"
    code, _, err = cli("export", "RegNetX-200MF", "--strategy", "dWr", "--scale", "2", "-o", str(f),
                       "--cache-dir", str(onnx_cache), "--no-verify")
    assert code == 0, err
    _, zoo_out, _ = cli("complexity", "RegNetX-200MF", "--strategy", "dWr", "--scale", "2", "--json")
    code, onnx_out, _ = cli("complexity", str(f), "--json")
    zoo, rec = json.loads(zoo_out), json.loads(onnx_out)
    assert code == 0 and all(rec[k] == zoo[k] for k in ("flops", "params", "acts", "resolution", "flops_unit"))
    assert rec["model"] == "scaled.onnx" and rec["hwprofile_spec"] == "RegNetX-200MF dWr x2"
    for key in ("strategy", "scale", "depths", "widths", "group_widths", "flops_ratio"):
        assert key in rec and rec[key] is None  # meaningless for a file
    assert rec["uncounted"] == {} and "nodes" not in rec


def test_complexity_of_a_foreign_graph(cli, tmp_path):
    path = _foreign(tmp_path)
    code, out, err = cli("complexity", path, "--json", "--batch", "4", "--by-node")
    rec = json.loads(out)
    assert code == 0, err
    assert rec["flops"] == 27 * 4 * 32 * 32 and rec["params"] == 108 and rec["acts"] == 4 * 32 * 32
    assert rec["batch"] == 4 and rec["input_shape"] == [4, 3, 32, 32] and rec["hwprofile_spec"] is None
    assert rec["uncounted"] == {"com.example::Foo": 1}
    assert [n["kind"] for n in rec["nodes"]] == ["counted", "uncounted"]
    code, out, _ = cli("complexity", path, "--by-node")
    assert code == 0 and "NOT counted" in out and "com.example::Foo x1" in out and "Per node" in out


def _bad_files(tmp_path) -> dict:
    text = tmp_path / "text.onnx"
    text.write_text("not a model\n")
    full = onnx.load(_foreign(tmp_path, "full.onnx")).SerializeToString()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(full[: len(full) // 2])
    mlp_x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])
    mlp = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "m", [mlp_x],
                                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
                            opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(mlp, tmp_path / "mlp.onnx")
    model = onnx.load(_foreign(tmp_path, "ext.onnx", unknown=False))
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="../../secret.data")
    onnx.save(model, tmp_path / "ext.onnx")
    (tmp_path / "taken.onnx").write_bytes(b"precious")
    return {"missing": str(tmp_path / "missing.onnx"), "text": str(text), "cut": str(cut),
            "symbolic": _foreign(tmp_path, "sym.onnx", dims=("N", 3, "h", "w")), "mlp": str(tmp_path / "mlp.onnx"),
            "ext": str(tmp_path / "ext.onnx"), "ok": _foreign(tmp_path, "ok.onnx"),
            "taken": str(tmp_path / "taken.onnx"),
            "txt_out": str(tmp_path / "model.txt"), "no_dir": str(tmp_path / "nodir" / "m.onnx")}


@pytest.mark.parametrize("argv,needle", [
    (["complexity", "{missing}"], "no such file"),
    (["complexity", "{text}"], "not"),
    (["complexity", "{cut}"], "truncated"),
    (["complexity", "{symbolic}"], "symbolic dimension 'h'"),
    (["complexity", "{mlp}"], "no image-shaped input"),
    (["complexity", "{ext}"], "outside the model's folder"),
    (["complexity", "{ok}", "--batch", "0"], "batch must be >= 1"),
    (["complexity", "{ok}", "--strategy", "dWr", "--scale", "2"], "apply to zoo models"),
    (["export", "RegNetY-4GF", "-o", "{txt_out}"], "did you mean"),
    (["export", "EfficientNet-B0", "-o", "{txt_out}"], "must end in .onnx"),
    (["export", "EfficientNet-B0", "-o", "{no_dir}"], "no such folder"),
    (["export", "EfficientNet-B0", "-o", "{taken}"], "exists; choose another name or pass --force"),
    (["export", "EfficientNet-B0", "-o", "{ok}", "--batch", "zero"], "batch must be 'dynamic' or a positive integer"),
    (["export", "EfficientNet-B0", "-o", "{ok}", "--scale", "2"], "needs --strategy"),
    (["export", "EfficientNet-B0", "--strategy", "xyz", "--scale", "2", "-o", "{ok}"], "unknown strategy"),
    (["export", "EfficientNet-B0"], "-o/--output"),
])
def test_bad_input_is_one_line_exit_2(cli, tmp_path, argv, needle):
    files = _bad_files(tmp_path)
    code, _, err = cli(*[a.format(**files) for a in argv])
    assert code == 2, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert open(files["taken"], "rb").read() == b"precious"
