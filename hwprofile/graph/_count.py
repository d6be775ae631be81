"""flops, params and activations of any ONNX graph, counted with pycls's definitions.

The batch dimension is pinned, shapes are inferred (``data_prop=True``), and each node is
mapped to the layer rules of the analytic counter (:mod:`hwprofile.zoo._complexity`): Conv
(grouped, depthwise, any pads/strides; a bias counts as pycls counts a biased conv), Gemm /
MatMul with a weight (a constant Add after them is their bias), MaxPool (acts),
BatchNormalization and LayerNormalization (their scale and shift). Activations, elementwise and shape ops cost
nothing by those definitions; every other op is listed in ``uncounted`` by name, never
counted as zero. Counts are per image (divided by the batch).

torch's exporter folds each BatchNorm into the preceding conv (giving it a bias) and drops
all-zero biases. hwprofile's own exports therefore record in the model's ``hwprofile.folded_bn``
metadata what every Conv/Gemm node was in PyTorch (bias or not, which BatchNorm it absorbed),
and the counter counts each such node as that layer plus its BatchNorm (2·C params), so the
counts equal the analytic ones. A foreign graph is counted as it stands.

Weights are read from initializers, Constant and ConstantOfShape nodes, or graph inputs
backed by initializers (old graphs); only their shapes are needed, so external data is
checked (it must lie inside the model's folder) but never loaded.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hwprofile.graph._read import image_input, inferred_shapes, load_model, numel, pin_batch

FOLDED_BN_KEY = "hwprofile.folded_bn"
SPEC_KEY = "hwprofile.spec"

#: Ops that carry no cost by the analytic definitions (activations, elementwise maths, pooling
#: to 1x1, data movement and shape bookkeeping).
ZERO_COST_OPS = frozenset({
    "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Swish", "Tanh", "Elu", "Selu", "Gelu",
    "Erf", "Softplus", "Softsign", "Mish", "Clip", "Softmax", "LogSoftmax",
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Sum", "Mean",
    "Max", "Min", "Where", "Equal", "Less", "Greater", "Not", "And", "Or",
    "GlobalAveragePool", "ReduceMean", "Dropout", "Identity", "Flatten", "Reshape", "Shape", "Size",
    "Cast", "CastLike", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Transpose", "Expand",
    "Gather", "Constant", "ConstantOfShape", "Range", "Tile",
})
#: Ops through which a constant stays a constant (a weight may be cast or reshaped).
_CONST_PASS = frozenset({"Identity", "Cast", "CastLike", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                         "Flatten"})


@dataclass(frozen=True)
class NodeCost:
    """Per-image counts of one node; ``kind`` is counted, zero (no cost by definition) or uncounted."""

    name: str
    op_type: str
    kind: str
    flops: int = 0
    params: int = 0
    acts: int = 0
    output_shape: tuple | None = None

    def to_dict(self) -> dict:
        d = dict(vars(self))
        d["output_shape"] = None if self.output_shape is None else list(self.output_shape)
        return d


@dataclass(frozen=True)
class OnnxComplexity:
    """Per-image flops (multiply-adds), params and acts of an ONNX graph."""

    model: str
    flops: int
    params: int
    acts: int
    resolution: int
    input_name: str
    input_shape: tuple  # with the batch pinned
    batch: int
    opset: int | None
    uncounted: dict  # op type -> number of nodes that could not be counted
    folded_bn_params_added: int
    spec: dict | None = None  # hwprofile's ``hwprofile.spec`` metadata, for its own exports
    nodes: tuple = field(default=())  # NodeCost, with by_node=True

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("model", "flops", "params", "acts", "resolution", "input_name",
                                           "batch", "opset", "uncounted", "folded_bn_params_added", "spec")}
        d["input_shape"] = list(self.input_shape)
        d["nodes"] = [n.to_dict() for n in self.nodes]
        return d


# ------------------------------------------ counting ------------------------------------------ #



class _Graph:
    """Constant tracking, consumers and shapes of one graph."""

    def __init__(self, model: Any, shapes: dict[str, list]):
        g = model.graph
        self.shapes = shapes
        self.consts = {t.name for t in g.initializer}
        self.consumers: Counter = Counter()
        for node in g.node:
            for i in node.input:
                self.consumers[i] += 1
            if node.op_type in ("Constant", "ConstantOfShape") or (
                    node.op_type in _CONST_PASS and node.input and all(i in self.consts for i in node.input if i)):
                self.consts.update(node.output)
            if node.op_type == "Constant":
                self._constant_shape(node)
        for o in g.output:
            self.consumers[o.name] += 1

    def _constant_shape(self, node: Any) -> None:
        for a in node.attribute:
            if a.name == "value" and node.output[0] not in self.shapes:
                self.shapes[node.output[0]] = list(a.t.dims)

    def shape(self, name: str) -> list | None:
        s = self.shapes.get(name)
        return s if numel(s) is not None else None

    def numel(self, name: str) -> int | None:
        return numel(self.shapes.get(name))

    def is_const(self, name: str) -> bool:
        return name in self.consts


def _folded(model: Any) -> dict[str, dict]:
    """Conv/Gemm node name -> what it was in PyTorch (channels, bias, folded BatchNorm), from
    hwprofile's metadata; empty for foreign graphs, which are counted as they stand."""
    for p in model.metadata_props:
        if p.key == FOLDED_BN_KEY:
            try:
                entries = json.loads(p.value)["convs"]
                return {e["node"]: e for e in entries if _valid_origin(e)}
            except (ValueError, KeyError, TypeError, RecursionError):
                return {}
    return {}


def _valid_origin(e: Any) -> bool:
    """A folded-layer entry hwprofile can use: a node name and a non-negative integer channel count."""
    ch = e.get("channels") if isinstance(e, dict) else None
    return (isinstance(e, dict) and isinstance(e.get("node"), str) and isinstance(ch, int)
            and not isinstance(ch, bool) and 0 <= ch < 1 << 40)


def _bias(node: Any, g: _Graph, origin: dict | None, y_n: int) -> tuple[int, int]:
    """(flops, params) of a layer's bias: as built in PyTorch when hwprofile recorded it, else as in the graph."""
    if origin is not None:
        return (y_n, int(origin["channels"])) if origin.get("bias") else (0, 0)
    if len(node.input) > 2 and node.input[2]:
        return y_n, g.numel(node.input[2]) or 0
    return 0, 0


def _conv(node: Any, g: _Graph, origin: dict | None) -> tuple[int, int, int] | None:
    if len(node.input) < 2 or not node.output:
        return None
    w = g.shape(node.input[1])
    y_n, w_n = g.numel(node.output[0]), numel(w)
    if y_n is None or w is None or w_n is None or not w or w[0] <= 0:
        return None
    b_flops, b_params = _bias(node, g, origin, y_n)
    flops = y_n * w_n // w[0] + b_flops
    params = (w_n if g.is_const(node.input[1]) else 0) + b_params
    if origin is not None and origin.get("bn"):
        params += 2 * int(origin["channels"])
    return flops, params, y_n


def _gemm(node: Any, g: _Graph, origin: dict | None) -> tuple[int, int, int] | None:
    if len(node.input) < 2 or not node.output:
        return None
    a, b = node.input[0], node.input[1]
    weight = b if g.is_const(b) else a if g.is_const(a) else None
    sa, sb, y_n = g.shape(a), g.shape(b), g.numel(node.output[0])
    if weight is None or sa is None or sb is None or y_n is None or len(sa) != 2:
        return None
    trans_a = next((x.i for x in node.attribute if x.name == "transA"), 0)
    k = sa[0] if trans_a else sa[1]
    b_flops, b_params = _bias(node, g, origin, y_n)
    return y_n * k + b_flops, (g.numel(weight) or 0) + b_params, y_n


def _matmul(node: Any, g: _Graph) -> tuple[int, int, int] | None:
    if len(node.input) < 2 or not node.output:
        return None
    a, b = node.input[0], node.input[1]
    weight = b if g.is_const(b) else a if g.is_const(a) else None
    sa, y_n = g.shape(a), g.numel(node.output[0])
    if weight is None or sa is None or y_n is None or not sa:
        return None
    return y_n * sa[-1], g.numel(weight) or 0, y_n


def _norm(node: Any, g: _Graph) -> tuple[int, int, int] | None:
    named = [i for i in node.input[1:3] if i]
    sizes = [n for i in named if g.is_const(i) and (n := g.numel(i)) is not None]
    if len(sizes) != len(named):
        return None
    return 0, sum(sizes), 0


def _maxpool(node: Any, g: _Graph) -> tuple[int, int, int] | None:
    if not node.output:
        return None
    n = g.numel(node.output[0])
    return None if n is None else (0, 0, n)


def _bias_add(node: Any, g: _Graph, weighted: dict[str, str]) -> tuple[int, int] | None:
    """(flops, params) of this Add when it biases a Conv/Gemm/MatMul output: one add per output element, one
    parameter per bias element."""
    if node.op_type != "Add" or len(node.input) != 2:
        return None
    for x, c in (node.input, node.input[::-1]):
        if x in weighted and g.is_const(c) and g.consumers[x] == 1:
            n_c, shape_x, n_x = g.numel(c), g.shape(x), g.numel(x)
            if (n_c is not None and shape_x is not None and n_x is not None and len(shape_x) >= 2
                    and n_c == shape_x[1 if weighted[x] == "Conv" else -1]):
                return n_x, n_c
    return None


def _node_cost(node: Any, g: _Graph, folds: dict) -> tuple[int, int, int] | None:
    op = node.op_type
    if op == "Conv":
        return _conv(node, g, folds.get(node.name))
    if op == "Gemm":
        return _gemm(node, g, folds.get(node.name))
    if op == "MatMul":
        return _matmul(node, g)
    if op in ("BatchNormalization", "LayerNormalization"):
        return _norm(node, g)
    if op == "MaxPool":
        return _maxpool(node, g)
    return None


_COUNTED = frozenset({"Conv", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization", "MaxPool"})


def _count_nodes(model: Any, g: _Graph, batch: int) -> tuple[list[NodeCost], Counter, int]:
    folds = _folded(model)
    costs: list[NodeCost] = []
    uncounted: Counter[str] = Counter()
    folded_params = 0
    weighted: dict[str, str] = {}
    for node in model.graph.node:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        out_shape = g.shapes.get(node.output[0]) if node.output else None
        bias = _bias_add(node, g, weighted)
        if bias is not None:
            costs.append(NodeCost(node.name, op, "counted", *bias, 0, _tuple(out_shape)))
        elif op in _COUNTED:
            cost = _node_cost(node, g, folds)
            if cost is None:
                uncounted[op] += 1
                costs.append(NodeCost(node.name, op, "uncounted", output_shape=_tuple(out_shape)))
                continue
            if op in ("Conv", "Gemm", "MatMul"):
                weighted[node.output[0]] = op
            if op == "Conv" and folds.get(node.name, {}).get("bn"):
                folded_params += 2 * int(folds[node.name]["channels"])
            costs.append(NodeCost(node.name, op, "counted", *cost, _tuple(out_shape)))
        elif op in ZERO_COST_OPS:
            costs.append(NodeCost(node.name, op, "zero", output_shape=_tuple(out_shape)))
        else:
            uncounted[op] += 1
            costs.append(NodeCost(node.name, op, "uncounted", output_shape=_tuple(out_shape)))
    per_image = [_per_image(c, batch) for c in costs]
    return per_image, uncounted, folded_params


def _tuple(shape: list | None) -> tuple | None:
    return None if shape is None else tuple(shape)


def _per_image(c: NodeCost, batch: int) -> NodeCost:
    if batch == 1 or c.kind != "counted":
        return c
    return NodeCost(c.name, c.op_type, c.kind, c.flops // batch, c.params, c.acts // batch, c.output_shape)


def count_onnx(path_or_model: Any, batch: int | None = None, by_node: bool = False) -> OnnxComplexity:
    """Per-image counts of an ONNX file or ModelProto at ``batch`` (default 1, or the fixed batch)."""
    model, name, _ = load_model(path_or_model)
    where = name
    inp = image_input(model, where)
    batch = pin_batch(model, inp, batch, where)
    input_shape = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
    shapes = inferred_shapes(model, where)
    g = _Graph(model, shapes)
    costs, uncounted, folded_params = _count_nodes(model, g, batch)
    counted = [c for c in costs if c.kind == "counted"]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return OnnxComplexity(
        model=name, flops=sum(c.flops for c in counted), params=sum(c.params for c in counted),
        acts=sum(c.acts for c in counted), resolution=input_shape[2], input_name=inp.name,
        input_shape=input_shape, batch=batch, opset=opset, uncounted=dict(sorted(uncounted.items())),
        folded_bn_params_added=folded_params, spec=_spec(model), nodes=tuple(costs) if by_node else (),
    )


def _spec(model: Any) -> dict | None:
    for p in model.metadata_props:
        if p.key == SPEC_KEY:
            try:
                spec = json.loads(p.value)
            except (ValueError, RecursionError):
                return None
            return spec if isinstance(spec, dict) and isinstance(spec.get("name"), str) else None
    return None


def spec_metadata(path_or_model: Any) -> dict | None:
    """The ``hwprofile.spec`` metadata of one of hwprofile's exports (None for foreign graphs)."""
    return _spec(load_model(path_or_model)[0])
