"""``hwprofile layers``: real per-layer measurements on this CPU, asserted structurally (a loaded machine)."""

import csv
import io
import json

import pytest

from layer_fixtures import tiny_cnn

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


def must_show(data: dict) -> None:
    """The issue's checks for EfficientNet-B0 that hold on a loaded machine: every conv joined to its counts,
    the rows and the gap row adding up to the profiled run, the profiler's overhead stated against the clean
    end-to-end, a memory-bound share strictly between 0 and 1; with peaks measured on a quiet CPU, every depthwise
    convolution whose intensity is under the ridge memory-bound and the others compute-bound. At least 90% of them
    are memory-bound where the ridge lies above the 5x5 depthwise convolutions' intensity (6.2 FLOP/B; 9 of the 16
    are 3x3 or strided, at 0.9-2.3 FLOP/B): the CPU's matmul peak over its copy bandwidth decides it. (Within 15%
    of ``hwprofile run``, rows within 25% of the end-to-end and the 90% need a quiet machine: docs/layers.md
    gives the commands and what this VM printed.)"""
    convs = [(r, n) for r in data["rows"] for n, op in zip(r.get("onnx_nodes") or [], r.get("onnx_ops") or [])
             if op == "Conv"] or [(r, r["name"]) for r in data["rows"] if r["op_type"] == "Conv2d"]
    assert len(convs) == 81 and len({n for _, n in convs}) == 81
    assert all(r["flops"] > 0 and r["bytes"] > 0 and r["intensity"] is not None for r, _ in convs)
    dw = [r for r in data["rows"] if r.get("depthwise")]
    assert len(dw) == 16
    if not data["peaks"]["disturbed"]:
        ridge = data["peaks"]["ridge"]
        assert all(r["bound"] == ("memory" if r["intensity"] < ridge else "compute") for r in dw), \
            [(r["intensity"], r["bound"], ridge) for r in dw]
        if ridge > max(r["intensity"] for r in dw):
            assert sum(r["bound"] == "memory" for r in dw) >= 0.9 * 16
    assert 0 < data["memory_bound_time_fraction"] < 1
    gap = data["rows"][-1]
    assert gap["kind"] == "gap" and (gap["time_ms"] >= 0 or gap["name"].startswith("(gap, negative: "))
    assert sum(r["time_ms"] for r in data["rows"]) == pytest.approx(data["profiled_run_ms"])
    assert data["profiler_overhead"] == pytest.approx(data["profiled_run_ms"] / data["end_to_end_ms"] - 1)
    assert any(n.startswith("profiler overhead: ") for n in data["notes"])
    assert data["clean_after_ms"] > 0 and data["latency_median_ms"] > 0
    assert data["schema"] == "hwprofile.layers" and data["time_source"] == "cpu"
    assert {s["op_type"] for s in data["summary"]} & {"Conv", "Conv2d"}
    assert "inputs + weights + outputs" in data["bytes_model"]


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["ort:cpu", "torch:cpu"])
def test_efficientnet_b0_must_show(cli, runner):
    code, out, err = cli("layers", "EfficientNet-B0", "--runner", runner, "--batch", "1", "--device", "cpu",
                         "--iterations", "20", "--json")
    assert code == 0, err
    data = json.loads(out)
    must_show(data)
    assert data["rounds"] == 2 and data["iterations"] == 20  # two rounds of 10, between three clean blocks
    assert len(data["clean_blocks_ms"]) == 3 and data["clean_after_ms"] == data["clean_blocks_ms"][-1]
    if runner == "ort:cpu":  # fused NCHWc layers say which ONNX nodes they contain; reorders are overhead
        assert any(len(r["onnx_nodes"]) > 1 for r in data["rows"] if r["kind"] == "layer")
        assert any(r["op_type"].startswith("Reorder") for r in data["rows"] if r["kind"] == "overhead")
        assert {r["provider"] for r in data["rows"] if r["kind"] != "gap"} == {"CPUExecutionProvider"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_cnn(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.mark.slow
def test_formats_and_out_file(cli, tiny, tmp_path, monkeypatch):
    """One real measurement, printed as a table and saved; the csv and markdown calls print that same measurement
    (the formats are the renderer's: a fresh measurement would only cost time)."""
    import hwprofile.cli.layers_run as layers_cli

    measured = []

    def measure_once(*args, **kwargs):
        if not measured:
            measured.append(real(*args, **kwargs))
        return measured[0]

    real = layers_cli.measure_layers
    monkeypatch.setattr(layers_cli, "measure_layers", measure_once)
    out = tmp_path / "layers.json"
    code, text, err = cli("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--resolution", "32",
                          "--iterations", "6", "--out", str(out))
    assert code == 0, err
    assert "end-to-end" in text and "ridge" in text and "Per op type" in text and "conv1, relu1" in text
    saved = json.loads(out.read_text())
    assert {"end_to_end_ms", "layer_sum_ms", "memory_bound_time_fraction", "summary", "rows"} <= set(saved)
    assert (saved["schema"], saved["schema_version"]) == ("hwprofile.layers", 1)
    from hwprofile.analysis._layers import file_report
    from hwprofile.profile._layer_file import load

    again = file_report(load(out)).to_dict()  # read back through the typed loader: the same report
    assert again["end_to_end_ms"] == saved["end_to_end_ms"] and len(again["rows"]) == len(saved["rows"])
    assert again["memory_bound_time_fraction"] == pytest.approx(saved["memory_bound_time_fraction"])
    code, _, err = cli("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--resolution", "32",
                       "--iterations", "6", "--out", str(out))
    assert code == 2 and "already exists" in err  # never overwritten
    code, text, _ = cli("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--resolution", "32",
                        "--iterations", "6", "--format", "csv")
    assert code == 0
    first = text.split("\n# ")[0]
    assert first.startswith("# ")  # one csv block per table, each under its title
    rows = list(csv.DictReader(io.StringIO(first.split("\n", 1)[1])))
    assert {"name", "time_ms", "flops", "bytes", "intensity", "bound"} <= set(rows[0])
    code, text, _ = cli("layers", tiny, "--runner", "ort:cpu", "--device", "cpu", "--resolution", "32",
                        "--iterations", "6", "--format", "markdown")
    assert code == 0 and text.startswith("### ")
    assert len(measured) == 1


def test_bad_input_is_one_line(cli, tiny):
    code, _, err = cli("layers", tiny, "--runner", "torch:cpu", "--device", "cpu")
    assert code == 2 and "zoo models" in err and "Traceback" not in err
    code, _, err = cli("layers", "nope.onnx", "--runner", "ort:cpu", "--device", "cpu")
    assert code == 2 and "does not exist" in err
    code, _, err = cli("layers", "EfficientNet-B0", "--runner", "ort:cpu", "--scale", "2")
    assert code == 2 and "--strategy" in err
