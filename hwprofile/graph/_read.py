"""Reading an ONNX graph safely and inferring its shapes (used by the counter, the sweep and the exporters).

``load_model`` refuses truncated, foreign or broken files and external data that points outside
the model's folder with one line, and never loads the weights; ``inferred_shapes`` runs ONNX shape
inference on a light copy (large initializers become typed inputs) with the batch pinned by
``pin_batch``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from hwprofile._lazy import heavy
from hwprofile.errors import ConfigError, InputFileError


def load_model(path_or_model: Any) -> tuple[Any, str, Path | None]:
    """(ModelProto without external weights, display name, folder) or a one-line InputFileError."""
    onnx = heavy("onnx")

    if isinstance(path_or_model, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(path_or_model)
        _check_structure(model, "<model>")
        return model, "<model>", None
    path = Path(path_or_model)
    name = path.name
    if not path.exists():
        raise InputFileError(f"{path}: no such file (expected an .onnx model)")
    if not path.is_file():
        raise InputFileError(f"{path}: not a file (expected an .onnx model)")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: empty file (expected an .onnx model)")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # DecodeError and friends: the bytes are not a ModelProto
        raise InputFileError(f"{path}: not a readable ONNX model (truncated or not ONNX: "
                             f"{first_line(exc)})") from None
    _check_structure(model, str(path))
    _check_external_data(model, path)
    return model, name, path.parent


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _check_structure(model: Any, where: str) -> None:
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise InputFileError(f"{where}: not an ONNX model (no IR version or graph)")
    if not model.opset_import:
        raise InputFileError(f"{where}: incomplete ONNX model (no opset; truncated file?)")
    g = model.graph
    if not g.node or not g.output:
        raise InputFileError(f"{where}: incomplete ONNX model (no nodes or outputs; truncated file?)")
    for t in g.initializer:
        if any(d < 0 for d in t.dims):
            raise InputFileError(f"{where}: broken graph: initializer {t.name[:60]!r} has a negative dimension "
                                 f"{list(t.dims)[:8]}")
    known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    for node in g.node:
        missing = [i for i in node.input if i not in known]
        if missing:
            raise InputFileError(f"{where}: broken graph: node {node.name or node.op_type!r} reads undefined "
                                 f"tensor {missing[0]!r} (truncated or edited file?)")
        known.update(node.output)
    undefined = [o.name for o in g.output if o.name not in known]
    if undefined:
        raise InputFileError(f"{where}: broken graph: output {undefined[0]!r} is never produced")


def _external_tensors(model: Any):
    _get_all_tensors = heavy("onnx.external_data_helper")._get_all_tensors

    for t in _get_all_tensors(model):
        if t.data_location == 1:  # TensorProto.EXTERNAL
            yield t


def _check_external_data(model: Any, path: Path) -> None:
    """External-data locations must name existing files inside the model's folder."""
    folder = path.parent.resolve()
    for t in _external_tensors(model):
        loc = next((e.value for e in t.external_data if e.key == "location"), "")
        shown = loc if len(loc) <= 60 else loc[:57] + "..."
        try:
            target = (folder / loc).resolve()
            inside = bool(loc) and not os.path.isabs(loc) and target.is_relative_to(folder)
            exists = inside and target.is_file()
        except (ValueError, OSError) as exc:  # a NUL byte, a name too long for the file system
            raise InputFileError(f"{path}: external data location {shown!r} of {t.name[:60]!r} is not a usable "
                                 f"file name ({exc.__class__.__name__}); refused") from None
        if not inside:
            raise InputFileError(f"{path}: external data of {t.name[:60]!r} points outside the model's folder "
                                 f"({shown!r}); refused")
        if not exists:
            raise InputFileError(f"{path}: external data file {loc!r} of {t.name!r} is missing")


# ------------------------------------------- shapes ------------------------------------------- #

def dims_of(tensor_type: Any) -> list | None:
    if not tensor_type.HasField("shape"):
        return None
    out = []
    for d in tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def image_input(model: Any, where: str) -> Any:
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise InputFileError(f"{where}: expected one image input [N, C, H, W], found {len(inputs)} ({names})")
    inp = inputs[0]
    dims = dims_of(inp.type.tensor_type) if inp.type.HasField("tensor_type") else None
    if dims is None or len(dims) != 4:
        shape = "unknown" if dims is None else dims
        raise InputFileError(f"{where}: no image-shaped input: expected [N, C, H, W], input {inp.name!r} "
                             f"has shape {shape}")
    for axis, d in enumerate(dims[1:], start=1):
        if not isinstance(d, int) or d <= 0:
            raise InputFileError(f"{where}: input {inp.name!r} has symbolic dimension {d!r} at axis {axis}; "
                                 f"only the batch dimension may be symbolic (export at a fixed resolution)")
    return inp


def pin_batch(model: Any, inp: Any, batch: int | None, where: str) -> int:
    dim0 = inp.type.tensor_type.shape.dim[0]
    if dim0.HasField("dim_value") and dim0.dim_value > 0:
        fixed = dim0.dim_value
        if batch is not None and batch != fixed:
            raise ConfigError(f"{where}: the graph has a fixed batch of {fixed}; --batch {batch} is not possible")
        return fixed
    batch = 1 if batch is None else batch
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    dim0.Clear()
    dim0.dim_value = batch
    return batch


def _light(model: Any) -> Any:
    """A copy for shape inference in which large initializers are typed graph inputs instead
    (inference needs their shapes, never their values), so counting stays fast for big models."""
    onnx = heavy("onnx")

    light = onnx.ModelProto()
    for name in ("ir_version", "producer_name", "producer_version", "domain", "model_version"):
        setattr(light, name, getattr(model, name))
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g, lg = model.graph, light.graph
    lg.name = g.name
    lg.node.extend(g.node)
    lg.input.extend(g.input)
    lg.output.extend(g.output)
    declared = {i.name for i in g.input}
    for t in g.initializer:
        if math.prod(t.dims) <= 1024:  # dims >= 0: _check_structure
            lg.initializer.append(t)
        elif t.name not in declared:
            lg.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return light


def inferred_shapes(model: Any, where: str) -> dict[str, list]:
    """Tensor name -> inferred shape (ints where known), ignoring stale annotations in the file."""
    onnx = heavy("onnx")

    light = _light(model)
    for out in light.graph.output:
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(light, strict_mode=False, data_prop=True)
    except Exception as exc:
        raise InputFileError(f"{where}: shape inference failed: {first_line(exc)}") from None
    shapes: dict[str, list] = {}
    for vi in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if vi.type.HasField("tensor_type"):
            dims = dims_of(vi.type.tensor_type)
            if dims is not None:
                shapes[vi.name] = dims
    for t in model.graph.initializer:
        shapes[t.name] = list(t.dims)
    return shapes


def numel(shape: list | None) -> int | None:
    if shape is None or any(not isinstance(d, int) or d < 0 for d in shape):
        return None
    n = 1
    for d in shape:
        n *= d
    return n
