"""Joining measured layers to ONNX nodes and their counts (hwprofile.runners._layer_join)."""

import pytest

from hwprofile.runners import onnx_layers
from hwprofile.runners._layer_join import map_optimized, trt_nodes
from layer_fixtures import tiny_cnn

C, RES, B = 16, 32, 2


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    return onnx_layers(tiny_cnn(tmp_path_factory.mktemp("tiny") / "tiny.onnx", C, RES), B)


def test_counts_and_bytes_of_single_and_fused_nodes(info):
    hw = RES * RES
    assert info.flops["conv1"] == B * hw * C * 27 + B * hw * C  # multiply-adds (+ bias), whole batch
    assert info.depthwise == {"dw"} and info.group == {"conv1": 1, "dw": C, "pw": 1}
    # bytes = inputs + weights + outputs at 4 bytes
    one = info.counts(["dw"])
    assert one["bytes"] == 4 * (B * C * hw + C * 9 + C + B * C * hw)
    assert one["op_type"] == "Conv" and one["depthwise"] and one["group"] == C
    # a fused conv + relu never writes the conv's output: only x, weights and the relu's output count
    fused = info.counts(["dw", "relu2"])
    assert fused["bytes"] == one["bytes"] and fused["onnx_ops"] == ["Conv", "Relu"]
    assert info.counts(["add", "gap"])["op_type"] == "Add+GlobalAveragePool"


def test_optimized_ort_graph_maps_back(info, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(info.path, so, providers=["CPUExecutionProvider"])
    nodes = [(n.name, n.op_type) for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    groups, dropped = map_optimized(info, nodes)
    owner = {n: g for g, members in groups.items() for n in members}
    assert set(owner) == set(info.order) and not dropped  # every exported node is run by exactly one
    assert sum(len(m) for m in groups.values()) == len(info.order)
    assert owner["relu1"] == owner["conv1"] and owner["relu2"] == owner["dw"]
    assert owner["add"] == owner["pw"]  # the residual add is fused forward into the conv that produces it


def test_optimized_names_by_hand(info):
    opt = [("r1_nchwc", "Conv"), ("ReorderInput", "ReorderInput"), ("relu2/SomeFusion/", "Relu"),
           ("p_nchwc", "Conv"), ("gap", "GlobalAveragePool"), ("flat", "Flatten"), ("fc", "Gemm")]
    groups, dropped = map_optimized(info, opt)
    assert groups["r1_nchwc"] == ["relu1", "conv1"] and groups["ReorderInput"] == []
    assert sorted(groups["relu2/SomeFusion/"]) == ["dw", "relu2"] and sorted(groups["p_nchwc"]) == ["add", "pw"]


def test_trt_layer_names(info):
    assert trt_nodes("conv1 + relu1", None, info) == ["conv1", "relu1"]
    assert trt_nodes("PWN(relu2)", "[ONNX Layer: dw]\x1e[ONNX Layer: relu2]", info) == ["dw", "relu2"]
    assert trt_nodes("{ForeignNode[add...fc]}", None, info) == ["add", "gap", "flat", "fc"]
    assert trt_nodes("Reformatting CopyNode for Input Tensor 0 to conv1 + relu1", None, info) is None
    assert trt_nodes("something else", None, info) == []
