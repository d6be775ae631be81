"""A tiny CNN as an ONNX graph with known node names, for the per-layer tests."""

from __future__ import annotations

from pathlib import Path


def tiny_cnn(path: Path, channels: int = 16, res: int = 32, slow: bool = False) -> str:
    """conv1 (3->C, 3x3) -> relu1 -> dw (depthwise 3x3) -> relu2 -> pw (1x1, C->C) -> add (residual)
    -> gap -> flat -> fc (C->10). ``slow``: the pointwise conv gets a 7x7 kernel (a slower layer of the
    same name)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    k = 7 if slow else 1

    def w(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)

    inits = [w("w1", channels, 3, 3, 3), w("b1", channels), w("wd", channels, 1, 3, 3), w("bd", channels),
             w("wp", channels, channels, k, k), w("bp", channels), w("wf", 10, channels), w("bf", 10)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["d"], name="dw", pads=[1, 1, 1, 1], group=channels),
        helper.make_node("Relu", ["d"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "wp", "bp"], ["p"], name="pw", pads=[k // 2] * 4),
        helper.make_node("Add", ["p", "r1"], ["s"], name="add"),
        helper.make_node("GlobalAveragePool", ["s"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                            ["batch", 3, res, res])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)
