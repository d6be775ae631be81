"""Property-based tests (hypothesis): generated and mutated profiles through Profile.load, show, compare,
check and merge (in-process), and mutated ONNX graphs through count_onnx. Every outcome is a result or a
hwprofile error with exit 2/3 on one line: never another exception, and nothing written but the target."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwprofile.errors import HwprofileError
from hwprofile.profile import Profile

DATA = Path(__file__).resolve().parent / "data" / "profiles"
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])


def _small(name: str) -> dict:
    """A committed test profile with few samples per process (fast to load, still valid)."""
    data = json.loads((DATA / name).read_text())
    for r in data["records"]:
        lat = r.get("latency")
        if lat:
            lat["samples_ms"] = [s[:6] for s in lat["samples_ms"]]
            lat["iterations"] = sum(len(s) for s in lat["samples_ms"])
    return data


BASE = _small("cpu-a.json")
OTHER = _small("cpu-a2.json")

leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 10**400, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["8.6", "four", "ok", "crashed", "skipped", "dWr", "../../x", "fp16", "ort:cpu", ""]),
)
json_value = st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                      max_size=3), max_leaves=6)
mutation = st.tuples(st.lists(st.integers(0, 60), min_size=1, max_size=6),
                     st.sampled_from(["set", "set", "set", "delete", "deep"]), json_value)


def mutate(data: dict, mutations) -> dict:
    data = copy.deepcopy(data)
    for path, action, value in mutations:
        parent, key, node = None, None, data
        for step in path:
            if isinstance(node, dict) and node:
                k = sorted(node, key=str)[step % len(node)]
            elif isinstance(node, list) and node:
                k = step % len(node)
            else:
                break
            parent, key, node = node, k, node[k]
        if parent is None:
            continue
        if action == "delete":
            del parent[key]
        elif action == "deep":
            parent[key] = json.loads("[" * 100 + "]" * 100)
        else:
            parent[key] = value
    return data


@contextlib.contextmanager
def workspace():
    """A fresh folder as the working directory; yields it."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="hwprofile-prop-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)


def run_cli(*argv: str) -> tuple[int, str]:
    from hwprofile.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, err.getvalue()


def assert_clean(code: int, err: str, allowed=(0, 1, 2, 3)) -> None:
    assert code in allowed, err
    assert "Traceback" not in err and "internal error" not in err, err
    if code in (2, 3):
        errors = [line for line in err.strip().splitlines() if not line.startswith("warning")]
        assert len(errors) == 1 and errors[0].startswith("hwprofile"), err


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ----------------------------------------------------------------------------- Profile.load

#: 300 derandomized examples of up to 3 mutated paths in one profile (1000, the count before, cost 3x as long)
@pytest.mark.slow
@settings(max_examples=300, **SETTINGS)
@given(st.lists(mutation, min_size=1, max_size=3))
def test_profile_load_of_a_mutated_profile_is_a_profile_or_a_schema_error(mutations):
    data = mutate(BASE, mutations)
    text = json.dumps(data)  # NaN and Infinity appear as such (non-standard JSON)
    with workspace() as ws:
        (ws / "p.json").write_text(text)
        try:
            profile = Profile.load(ws / "p.json")
        except HwprofileError as exc:
            assert exc.exit_code == 2 and "\n" not in str(exc)
            return
        again = Profile.from_dict(json.loads(json.dumps(profile.to_dict(), allow_nan=False)))
        assert [r.to_dict() for r in again.records] == [r.to_dict() for r in profile.records]
        assert files(ws) == {"p.json"}


# ----------------------------------------------------------------------------- the CLI on them

@pytest.mark.slow
@settings(max_examples=120, **SETTINGS)
@given(st.lists(mutation, min_size=1, max_size=3), st.booleans())
def test_show_compare_check_merge_on_a_mutated_profile(mutations, as_baseline):
    data = mutate(BASE, mutations)
    with workspace() as ws:
        (ws / "bad.json").write_text(json.dumps(data))
        (ws / "ok.json").write_text(json.dumps(OTHER))
        inputs = {"bad.json": (ws / "bad.json").read_bytes(), "ok.json": (ws / "ok.json").read_bytes()}
        assert_clean(*run_cli("show", "bad.json"), allowed=(0, 2))
        assert_clean(*run_cli("compare", *(("bad.json", "ok.json") if as_baseline else ("ok.json", "bad.json"))))
        base, cur = ("bad.json", "ok.json") if as_baseline else ("ok.json", "bad.json")
        code, err = run_cli("check", "--baseline", base, cur, "--junit", "j.xml")
        assert_clean(code, err)
        code_m, err_m = run_cli("merge", "ok.json", "bad.json", "-o", "m.json")
        assert_clean(code_m, err_m, allowed=(0, 2))
        allowed = {"bad.json", "ok.json", "j.xml", "m.json"}
        assert files(ws) <= allowed, files(ws) - allowed
        assert {k: (ws / k).read_bytes() for k in inputs} == inputs  # inputs untouched
        if code_m == 0:
            merged = json.loads((ws / "m.json").read_text(), parse_constant=lambda c: pytest.fail(c))
            assert merged["schema_version"] == 2


# ----------------------------------------------------------------------------- generated records

finite = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
record = st.fixed_dictionaries({
    "device_id": st.sampled_from(["dev-a", "dev/b", "../c"]),
    "model": st.sampled_from(["RegNetX-200MF", "EfficientNet-B0", "m.onnx"]),
    "strategy": st.sampled_from([None, "d", "w", "dWr"]),
    "scale": st.sampled_from([1.0, 2.0, 4.0, 16.0]),
    "batch": st.integers(1, 64),
    "runner": st.sampled_from(["ort:cpu", "torch:cpu"]),
    "precision": st.sampled_from(["fp32", "fp16"]),
    "mode": st.sampled_from(["infer", "train"]),
    "resolution": st.integers(0, 512),
    "flops": st.one_of(st.none(), st.integers(1, 2**62)),
    "params": st.one_of(st.none(), st.integers(1, 2**40)),
    "acts": st.one_of(st.none(), st.integers(1, 2**40)),
    "status": st.sampled_from(["ok", "ok", "crashed", "skipped"]),
    "reason": st.one_of(st.none(), st.text(max_size=10)),
    "latency": st.one_of(st.none(), st.fixed_dictionaries(
        {"median_ms": finite, "samples_ms": st.lists(st.lists(finite, min_size=1, max_size=5), max_size=3)})),
    "throughput": st.one_of(st.none(), st.fixed_dictionaries({"samples_per_s": finite})),
    "memory": st.dictionaries(st.sampled_from(["cpu_peak_rss_mb", "x_mb"]),
                              st.fixed_dictionaries({"value_mb": finite, "definition": st.text(max_size=5)})),
    "settings": st.dictionaries(st.sampled_from(["threads", "library", "foreign_cpu_cores"]),
                                st.sampled_from([1, 2, "torch", [0.5]]), max_size=2),
})


def _consistent(r: dict) -> dict:
    if isinstance(r["settings"].get("threads"), (str, list)):
        r["settings"].pop("threads")
    if "foreign_cpu_cores" in r["settings"] and not isinstance(r["settings"]["foreign_cpu_cores"], list):
        r["settings"].pop("foreign_cpu_cores")
    return r


@pytest.mark.slow
@settings(max_examples=120, **SETTINGS)
@given(st.lists(record.map(_consistent), min_size=1, max_size=8))
def test_generated_profiles_round_trip_and_show(records):
    data = {"schema": "hwprofile.profile", "schema_version": 2, "devices": {}, "sweeps": [], "records": records}
    profile = Profile.from_dict(data)
    again = Profile.from_dict(json.loads(json.dumps(profile.to_dict(), allow_nan=False)))
    assert [r.to_dict() for r in again.records] == [r.to_dict() for r in profile.records]
    with workspace() as ws:
        profile.save(ws / "g.json")
        assert_clean(*run_cli("show", "g.json"), allowed=(0,))
        assert_clean(*run_cli("compare", "g.json", "g.json"))
        assert files(ws) == {"g.json"}


# ----------------------------------------------------------------------------- ONNX graphs

onnx = pytest.importorskip("onnx")


def _tiny_model():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    fc = numpy_helper.from_array(np.ones((10, 4), np.float32), "fc")
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "b", "b", "b", "b"], ["n"], name="bn"),
             helper.make_node("MaxPool", ["n"], ["m"], kernel_shape=[2, 2], name="pool"),
             helper.make_node("GlobalAveragePool", ["m"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["g"], transB=1, name="fc"),
             helper.make_node("Relu", ["g"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
                              [w, b, fc])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


TINY = _tiny_model()
OPS = ["Conv", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization", "MaxPool", "Add", "Relu", "Flatten"]
graph_mutation = st.one_of(
    st.tuples(st.just("op"), st.integers(0, 20), st.sampled_from(OPS)),
    st.tuples(st.just("drop_inputs"), st.integers(0, 20), st.integers(0, 4)),
    st.tuples(st.just("dims"), st.integers(0, 20), st.lists(st.integers(-2, 9), max_size=5)),
    st.tuples(st.just("input_dims"), st.integers(0, 3), st.one_of(st.integers(-3, 2**31), st.text(max_size=3))),
    st.tuples(st.just("meta"), st.sampled_from(["hwprofile.folded_bn", "hwprofile.spec"]),
              json_value.map(lambda v: json.dumps(v))),
    st.tuples(st.just("folded"), st.integers(0, 3), json_value),
    st.tuples(st.just("external"), st.integers(0, 20), st.text(max_size=300)),
    st.tuples(st.just("attr"), st.integers(0, 20), st.integers(-3, 5)),
)


def mutate_graph(mutations):
    from onnx import TensorProto

    m = onnx.ModelProto()
    m.CopyFrom(TINY)
    g = m.graph
    for kind, a, b in mutations:
        if kind == "op":
            g.node[a % len(g.node)].op_type = b
        elif kind == "drop_inputs":
            node = g.node[a % len(g.node)]
            del node.input[b:]
        elif kind == "dims":
            t = g.initializer[a % len(g.initializer)]
            del t.dims[:]
            t.dims.extend(b)
        elif kind == "input_dims":
            d = g.input[0].type.tensor_type.shape.dim[a % 4]
            if isinstance(b, int):
                d.dim_value = b
            else:
                d.dim_param = b
        elif kind == "meta":
            e = m.metadata_props.add()
            e.key, e.value = a, b
        elif kind == "folded":
            e = m.metadata_props.add()
            e.key = "hwprofile.folded_bn"
            e.value = json.dumps({"convs": [{"node": "conv0", "channels": b, "bias": True, "bn": bool(a % 2)}]})
        elif kind == "external":
            t = g.initializer[a % len(g.initializer)]
            t.data_location = TensorProto.EXTERNAL
            e = t.external_data.add()
            e.key, e.value = "location", b
        elif kind == "attr":
            node = g.node[a % len(g.node)]
            for attr in node.attribute:
                if attr.ints:
                    del attr.ints[:]
                    attr.ints.extend([b] * 4)
                elif attr.type == attr.INT:
                    attr.i = b
    return m


#: 300 derandomized examples over 8 mutation kinds of a 7-node graph (1000, the count before, cost 3x as long)
@pytest.mark.slow
@settings(max_examples=300, **SETTINGS)
@given(st.lists(graph_mutation, min_size=1, max_size=3), st.booleans())
def test_count_onnx_of_a_mutated_graph_is_a_result_or_one_line(mutations, from_file):
    from hwprofile.graph import count_onnx

    model = mutate_graph(mutations)
    with workspace() as ws:
        target = model
        if from_file:
            (ws / "m.onnx").write_bytes(model.SerializeToString())
            target = str(ws / "m.onnx")
        try:
            cx = count_onnx(target)
        except HwprofileError as exc:
            assert exc.exit_code in (2, 3) and "\n" not in str(exc)
        else:
            assert cx.flops >= 0 and cx.params >= 0 and cx.acts >= 0
        assert files(ws) <= {"m.onnx"}
