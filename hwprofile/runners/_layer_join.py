"""Joins measured layers to the ONNX nodes they ran and to those nodes' counts.

Runners name what they time in their own terms: ONNX Runtime times the nodes of its *optimized*
graph (NCHWc convolutions named after a tensor, ``.../QuickGeluFusion/`` nodes, ``ReorderInput`` /
``ReorderOutput`` layout changes), TensorRT times fused layers named after the ONNX nodes they
contain (``a + b``, ``PWN(a, b)``, Myelin's ``{ForeignNode[a...b]}``). This module maps those names
back to nodes of the exported graph, and gives each set of nodes its counts:

- ``flops``: multiply-adds, from :func:`hwprofile.graph.count_onnx` (``by_node=True``),
  for the whole batch;
- ``bytes``: the bytes model of a roofline: every tensor the layer reads from outside it (its
  inputs and its weights) plus every tensor it writes that is read outside it (its outputs), at
  the element size of the graph's input (4 for fp32, 2 for fp16). Tensors that stay inside a fused
  layer are not counted: they never leave the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hwprofile.graph import count_onnx, image_input, inferred_shapes, load_model, pin_batch

#: optimized-graph op types that change layout only: overhead rows, never layers
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Reformat",
                        "Reformatting", "Transpose (layout)"})
_ELEMENT_BYTES = {1: 4, 10: 2, 16: 2, 11: 8, 7: 8, 6: 4}  # onnx TensorProto FLOAT, FLOAT16, BFLOAT16, ...


@dataclass
class OnnxLayers:
    """Per-node counts and shapes of one ONNX graph at one batch size."""

    path: str
    batch: int
    element_bytes: int
    order: list[str]  # node names in graph order
    op_type: dict[str, str]
    group: dict[str, int]  # Conv node -> its group attribute
    depthwise: set[str]
    flops: dict[str, int]  # whole-batch multiply-adds of counted nodes
    inputs: dict[str, list[str]]
    outputs: dict[str, list[str]]
    numel: dict[str, int]  # tensor -> elements at this batch
    consumers: dict[str, set[str]] = field(default_factory=dict)
    graph_outputs: set[str] = field(default_factory=set)
    producer: dict[str, str] = field(default_factory=dict)

    def bytes_of(self, nodes: list[str]) -> int:
        """Inputs + weights read from outside the node set plus outputs read outside it, in bytes."""
        inside = set(nodes)
        read, written = set(), set()
        for n in nodes:
            for t in self.inputs.get(n, []):
                if t and self.producer.get(t) not in inside:
                    read.add(t)
            for t in self.outputs.get(n, []):
                if t in self.graph_outputs or (self.consumers.get(t, set()) - inside):
                    written.add(t)
        return sum(self.numel.get(t, 0) for t in read | written) * self.element_bytes

    def counts(self, nodes: list[str]) -> dict[str, Any]:
        """flops, bytes, op types and the conv group of a set of nodes joined as one layer."""
        nodes = [n for n in self.order if n in set(nodes)]
        flops = sum(self.flops.get(n, 0) for n in nodes)
        main = max(nodes, key=lambda n: (self.flops.get(n, 0), self.op_type[n] in ("Conv", "Gemm", "MatMul")),
                   default=None)
        ops = [self.op_type[n] for n in nodes]
        op = self.op_type.get(main) if main and flops else "+".join(dict.fromkeys(ops)) or None
        out = {"onnx_nodes": nodes, "onnx_ops": ops, "flops": flops,
               "bytes": self.bytes_of(nodes), "op_type": op,
               "group": self.group.get(main) if main else None, "depthwise": main in self.depthwise}
        return out


def onnx_layers(path: str, batch: int) -> OnnxLayers:
    """Counts and shapes of every node of the ONNX file at ``path`` with the batch pinned."""
    cx = count_onnx(path, batch=batch, by_node=True)
    model, name, _ = load_model(path)
    inp = image_input(model, name)
    pin_batch(model, inp, batch, name)
    shapes = inferred_shapes(model, name)
    elem = _ELEMENT_BYTES.get(inp.type.tensor_type.elem_type, 4)
    numel = {}
    for t, s in shapes.items():
        if s is not None and all(isinstance(d, int) for d in s):
            n = 1
            for d in s:
                n *= d
            numel[t] = n
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    info = OnnxLayers(path=str(path), batch=batch, element_bytes=elem, order=[], op_type={}, group={},
                      depthwise=set(), flops={}, inputs={}, outputs={}, numel=numel,
                      graph_outputs={o.name for o in model.graph.output})
    for node in model.graph.node:
        n = node.name
        info.order.append(n)
        info.op_type[n] = node.op_type
        info.inputs[n] = [i for i in node.input if i]
        info.outputs[n] = list(node.output)
        for o in node.output:
            info.producer[o] = n
        for i in node.input:
            info.consumers.setdefault(i, set()).add(n)
        if node.op_type == "Conv":
            g = next((a.i for a in node.attribute if a.name == "group"), 1)
            info.group[n] = int(g)
            w = inits.get(node.input[1]) or shapes.get(node.input[1])
            if g > 1 and w and len(w) >= 2 and w[1] == 1 and w[0] == g:
                info.depthwise.add(n)
    for c in cx.nodes:
        if c.kind == "counted":
            info.flops[c.name] = int(c.flops) * batch
    return info


# ------------------------------------------------------------------- ONNX Runtime's graph

#: ops that ORT fuses forward into the convolution producing one of their inputs (NCHWc Sum), never
#: backward into the op they feed
_FORWARD_FUSED = frozenset({"Add", "Sum"})
_FUSION = re.compile(r"^(?P<node>.+?)/[A-Za-z0-9]*Fusion/?$")


def primary_node(name: str, info: OnnxLayers) -> str | None:
    """The exported node an optimized node is named after (by node name or output tensor)."""
    if name in info.op_type:
        return name
    m = _FUSION.match(name)
    if m and m["node"] in info.op_type:
        return m["node"]
    for suffix in ("_nchwc",):
        if name.endswith(suffix):
            return info.producer.get(name[: -len(suffix)])
    base = re.sub(r"_token_\d+$", "", name)
    if base != name and base in info.op_type:
        return base
    return None


def map_optimized(info: OnnxLayers, optimized: list[tuple[str, str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Optimized (name, op_type) nodes in graph order -> the exported nodes each contains, and the
    exported nodes that no optimized node runs (constants folded, identities removed).

    Each optimized node is matched to the exported node it is named after; exported nodes it fused
    are found by walking back from that node through nodes nothing else claims and only it reads (a
    Conv fused into the activation it feeds; never an Add), and then forward (an Add and activation
    fused into a convolution), a forward-fused node going to the latest optimized node among its
    inputs' producers."""
    position = {n: i for i, (n, _) in enumerate(optimized)}
    owner: dict[str, str] = {}
    groups: dict[str, list[str]] = {n: [] for n, _ in optimized}
    for name, op in optimized:
        if op in LAYOUT_OPS:
            continue
        p = primary_node(name, info)
        if p is not None and p not in owner:
            owner[p] = name
            groups[name].append(p)
    for name, members in groups.items():  # backward: nodes only this group reads
        stack = list(members)
        while stack:
            x = stack.pop()
            for t in info.inputs.get(x, []):
                q = info.producer.get(t)
                if q is None or q in owner or info.op_type[q] in _FORWARD_FUSED:
                    continue
                readers = set().union(*(info.consumers.get(o, set()) for o in info.outputs[q]))
                if readers and readers <= set(groups[name]) and not (set(info.outputs[q]) & info.graph_outputs):
                    owner[q] = name
                    groups[name].append(q)
                    stack.append(q)
    dropped = []
    for n in info.order:  # forward: fused into the latest producer's group
        if n in owner:
            continue
        cands = [owner[info.producer[t]] for t in info.inputs[n] if info.producer.get(t) in owner]
        if cands:
            best = max(cands, key=lambda g: position[g])
            owner[n] = best
            groups[best].append(n)
        else:
            dropped.append(n)
    return groups, dropped


# ------------------------------------------------------------------------ TensorRT's names

_ONNX_LAYER = re.compile(r"\[ONNX Layer: ([^\]]+)\]")
_FOREIGN = re.compile(r"ForeignNode\[(?P<a>.+?)\.\.\.(?P<b>.+?)\]")
_TOKEN = re.compile(r"[A-Za-z0-9_./:\-]+")


def trt_nodes(name: str, metadata: str | None, info: OnnxLayers) -> list[str] | None:
    """The exported nodes a TensorRT layer contains: from its ``[ONNX Layer: x]`` metadata when the
    engine was built with detailed profiling verbosity, else from its name (``a + b``, ``PWN(a, b)``,
    ``{ForeignNode[a...b]}`` = every node from a to b in graph order). None: a layer-less
    reformat/copy (overhead)."""
    if metadata:
        found = [n for n in _ONNX_LAYER.findall(metadata) if n in info.op_type]
        if found:
            return found
    low = name.lower()
    if low.startswith("reformatting") or "copynode" in low or low.startswith("reformat"):
        return None
    m = _FOREIGN.search(name)
    if m and m["a"] in info.op_type and m["b"] in info.op_type:
        i, j = info.order.index(m["a"]), info.order.index(m["b"])
        return info.order[min(i, j): max(i, j) + 1]
    found = [t for t in _TOKEN.findall(name) if t in info.op_type]
    return list(dict.fromkeys(found)) or []
