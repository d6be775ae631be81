"""Counting flops/params/acts from ONNX graphs: hwprofile's exports and hand-made foreign graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import hwprofile as hp  # noqa: E402
from hwprofile.errors import ConfigError, InputFileError  # noqa: E402
from hwprofile.graph import FOLDED_BN_KEY, count_onnx  # noqa: E402
from hwprofile.zoo._complexity import Cx, conv2d, gap2d, linear, norm2d, pool2d  # noqa: E402


def _export(spec, cache, **kw):
    from exporters import to_onnx

    return to_onnx(spec, cache_dir=cache, **kw)


# ------------------------------------- hwprofile's own exports ------------------------------------- #

ZOO_SUBSET = [  # SE + depthwise, SE + group conv, maxpool stem, inverted linear bottleneck
    ("EfficientNet-B0", {"batch": "dynamic"}),
    ("RegNetY-200MF", {"batch": "dynamic", "fp16": True}),
    ("ResNet-50", {"batch": "dynamic", "verify": False}),
    ("RegNetZ-500MF", {"batch": 2, "verify": False}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,kw", ZOO_SUBSET, ids=[n for n, _ in ZOO_SUBSET])
def test_export_counts_equal_analytic(name, kw, onnx_cache):
    spec = hp.get_spec(name)
    art = _export(spec, onnx_cache, **kw)
    ref = hp.complexity(spec)
    cx = count_onnx(art.path)
    assert (cx.flops, cx.params, cx.acts) == (ref.flops, ref.params, ref.acts)
    assert cx.uncounted == {} and cx.resolution == spec.train_res
    assert cx.spec["name"] == spec.name
    if kw["batch"] == "dynamic":  # per image at any batch
        at4 = count_onnx(art.path, batch=4)
        assert (at4.flops, at4.params, at4.acts, at4.batch) == (ref.flops, ref.params, ref.acts, 4)
    else:
        assert cx.batch == kw["batch"]


@pytest.mark.slow
def test_scaled_export_counts_equal_analytic(onnx_cache):
    spec = hp.scale(hp.get_spec("RegNetX-200MF"), "dWr", 2)
    art = _export(spec, onnx_cache, batch="dynamic", verify=False)
    ref = hp.complexity(spec)
    cx = count_onnx(art.path)
    assert (cx.flops, cx.params, cx.acts) == (ref.flops, ref.params, ref.acts)
    assert cx.spec["strategy"] == "dWr" and cx.spec["widths"] == list(spec.widths)


@pytest.mark.slow
def test_fold_metadata_is_what_makes_counts_exact(onnx_cache):
    """Without hwprofile's metadata the graph is counted as it stands: folded BN params are gone."""
    spec = hp.get_spec("EfficientNet-B0")
    art = _export(spec, onnx_cache, batch="dynamic")
    model = onnx.load(art.path)
    meta = json.loads(next(p.value for p in model.metadata_props if p.key == FOLDED_BN_KEY))
    assert meta["matched"] and len(meta["convs"]) == 82  # 81 convs + the classifier
    with_meta = count_onnx(model)
    kept = [p for p in model.metadata_props if p.key != FOLDED_BN_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    foreign = count_onnx(model)
    bn_params = 2 * sum(e["channels"] for e in meta["convs"] if e["bn"])
    assert with_meta.folded_bn_params_added == bn_params == 42016
    assert foreign.folded_bn_params_added == 0
    # as it stands: BN params gone, the folded (nonzero) biases count, the dropped zero SE biases do not
    has_bias = {n.name: len(n.input) > 2 and bool(n.input[2]) for n in model.graph.node}
    bias_delta = sum(e["channels"] * (has_bias[e["node"]] - e["bias"]) for e in meta["convs"])
    assert bias_delta != 0
    assert foreign.params == with_meta.params - bn_params + bias_delta
    assert foreign.acts == with_meta.acts


@pytest.mark.slow
def test_by_node_sums_to_totals(onnx_cache):
    art = _export(hp.get_spec("EfficientNet-B0"), onnx_cache, batch="dynamic")
    cx = count_onnx(art.path, by_node=True)
    counted = [n for n in cx.nodes if n.kind == "counted"]
    assert sum(n.flops for n in counted) == cx.flops and sum(n.acts for n in counted) == cx.acts
    assert {n.op_type for n in counted} == {"Conv", "Gemm"}
    assert all(n.kind == "zero" for n in cx.nodes if n.op_type in ("Sigmoid", "Mul", "ReduceMean"))


# ---------------------------------------- foreign graphs ---------------------------------------- #

def _init(name, shape, dtype=np.float32, value=None):
    arr = np.full(shape, 0.1 if value is None else value, dtype=dtype)
    return numpy_helper.from_array(arr, name)


def _foreign_model(batch="N", unknown=True) -> onnx.ModelProto:
    """conv(bias) -> BN -> relu -> maxpool -> depthwise conv (Constant weight) -> 1x1 s2 conv (weight
    listed among inputs, as old graphs do) -> GAP -> flatten -> MatMul + Add(ConstantOfShape bias)
    -> Gemm(transB) [-> Hardmax -> com.example::Foo]."""
    dw = numpy_helper.from_array(np.full((8, 1, 3, 3), 0.1, np.float32), "dw_w")
    nodes = [
        helper.make_node("Constant", [], ["conv1_b"], value=numpy_helper.from_array(np.zeros(8, np.float32))),
        helper.make_node("Conv", ["x", "conv1_w", "conv1_b"], ["c1"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["dw_w_c"], value=dw),
        helper.make_node("Conv", ["p1", "dw_w_c"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Conv", ["c2", "pw_w"], ["c3"], kernel_shape=[1, 1], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["c3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "fc_w"], ["mm"]),
        helper.make_node("ConstantOfShape", ["fc_b_shape"], ["fc_b"],
                         value=numpy_helper.from_array(np.array([0.1], np.float32))),
        helper.make_node("Add", ["mm", "fc_b"], ["fc"]),
        helper.make_node("Gemm", ["fc", "g_w", "g_b"], ["y"], transB=1),
    ]
    out = "y"
    if unknown:
        nodes += [helper.make_node("Hardmax", ["y"], ["h"]),
                  helper.make_node("Foo", ["h"], ["z"], domain="com.example")]
        out = "z"
    inits = [_init("conv1_w", (8, 3, 3, 3)), _init("bn_s", (8,)), _init("bn_b", (8,)), _init("bn_m", (8,)),
             _init("bn_v", (8,), value=1.0), _init("pw_w", (16, 8, 1, 1)), _init("fc_w", (16, 10)),
             numpy_helper.from_array(np.array([10], np.int64), "fc_b_shape"), _init("g_w", (5, 10)),
             _init("g_b", (5,))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 32, 32]),
              helper.make_tensor_value_info("pw_w", TensorProto.FLOAT, [16, 8, 1, 1])]  # old-style weight input
    graph = helper.make_graph(nodes, "foreign", inputs, [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def _expected_foreign() -> Cx:
    """The same network through the analytic counter's layer rules."""
    cx = norm2d(conv2d(Cx(32, 32), 3, 8, 3, stride=2, bias=True), 8)
    cx = pool2d(cx, 8, 3, stride=2)
    cx = conv2d(cx, 8, 8, 3, groups=8)
    cx = conv2d(cx, 8, 16, 1, stride=2)
    return linear(linear(gap2d(cx), 16, 10, bias=True), 10, 5, bias=True)


@pytest.mark.parametrize("batch", [1, 3])
def test_foreign_graph_counts_with_pycls_rules(batch):
    cx = count_onnx(_foreign_model(), batch=batch)
    ref = _expected_foreign()
    assert (cx.flops, cx.params, cx.acts) == (ref.flops, ref.params, ref.acts)
    assert cx.batch == batch and cx.input_shape == (batch, 3, 32, 32) and cx.resolution == 32


def test_unknown_ops_are_listed_never_zero():
    cx = count_onnx(_foreign_model(), by_node=True)
    assert cx.uncounted == {"Hardmax": 1, "com.example::Foo": 1}
    kinds = {n.op_type: n.kind for n in cx.nodes}
    assert kinds["Hardmax"] == "uncounted" and kinds["com.example::Foo"] == "uncounted"
    assert kinds["Relu"] == "zero" and kinds["Conv"] == "counted"
    bias_add = [n for n in cx.nodes if n.op_type == "Add"]
    assert bias_add[0].kind == "counted" and bias_add[0].params == 10  # the MatMul's bias


def test_activation_matmul_is_uncounted():
    """A MatMul of two activations has no weight: listed, not counted as zero."""
    model = _foreign_model(unknown=False)
    model.graph.node.append(helper.make_node("MatMul", ["y", "y_t"], ["yy"]))
    model.graph.node.insert(len(model.graph.node) - 1, helper.make_node("Transpose", ["y"], ["y_t"]))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("yy", TensorProto.FLOAT, None))
    assert count_onnx(model).uncounted == {"MatMul": 1}


def test_fixed_batch_graph_is_per_image(tmp_path):
    path = tmp_path / "fixed.onnx"
    onnx.save(_foreign_model(batch=4), path)
    cx = count_onnx(path)
    ref = _expected_foreign()
    assert cx.batch == 4 and (cx.flops, cx.params, cx.acts) == (ref.flops, ref.params, ref.acts)
    with pytest.raises(ConfigError, match="fixed batch of 4"):
        count_onnx(path, batch=2)


# ------------------------------------------ bad input ------------------------------------------ #

def test_missing_and_non_onnx_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        count_onnx(tmp_path / "nope.onnx")
    text = tmp_path / "text.onnx"
    text.write_text("hello, I am not a model\n" * 20)
    with pytest.raises(InputFileError, match="not"):
        count_onnx(text)
    noise = tmp_path / "noise.onnx"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputFileError):
        count_onnx(noise)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        count_onnx(empty)


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_truncated_files_are_refused(tmp_path, fraction):
    data = _foreign_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(InputFileError):
        count_onnx(path)


def test_symbolic_spatial_dims_are_refused():
    model = _foreign_model()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    with pytest.raises(InputFileError, match="symbolic dimension 'h'"):
        count_onnx(model)


def test_non_image_input_is_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mlp", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [_init("w", (16, 4))])
    with pytest.raises(InputFileError, match="no image-shaped input"):
        count_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _with_external(tmp_path, location: str) -> str:
    model = _foreign_model(unknown=False)
    w = next(t for t in model.graph.initializer if t.name == "fc_w")
    w.ClearField("raw_data")
    del w.float_data[:]
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return str(path)


@pytest.mark.parametrize("location", ["../outside.data", "/etc/passwd", "sub/../../outside.data"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    (tmp_path / "outside.data").write_bytes(b"\0" * 640)
    with pytest.raises(InputFileError, match="outside the model's folder"):
        count_onnx(_with_external(tmp_path, location))


def test_external_data_inside_the_folder_is_counted(tmp_path):
    path = _with_external(tmp_path, "w.data")
    with pytest.raises(InputFileError, match="missing"):
        count_onnx(path)
    (tmp_path / "model" / "w.data").write_bytes(b"\0" * 640)
    ref = _expected_foreign()
    cx = count_onnx(path)
    assert (cx.flops, cx.params, cx.acts) == (ref.flops, ref.params, ref.acts)
