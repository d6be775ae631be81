"""A tiny conv net written with onnx.helper (no exporter needed): NCHW float input, dynamic batch."""

from __future__ import annotations

from pathlib import Path


def tiny_onnx(path: Path, channels: int = 8, classes: int = 10, fixed_batch: int | None = None,
              resolution: int | None = None) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((channels, 3, 3, 3)) * 0.2).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(channels, np.float32), "b")
    fc = numpy_helper.from_array((rng.standard_normal((classes, channels)) * 0.2).astype(np.float32), "fc")
    fcb = numpy_helper.from_array(np.zeros(classes, np.float32), "fcb")
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1)]
    batch = fixed_batch if fixed_batch else "batch"
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            [batch, 3, resolution or "h",
                                                                             resolution or "w"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
                              [w, b, fc, fcb])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
