import json

import pytest

from hwprofile.errors import ConfigError
from hwprofile.profile import Measurement, TimingConfig, Workload
from hwprofile.zoo import get_spec, scale, spec_from_dict, spec_to_dict


@pytest.mark.parametrize("name", ["RegNetY-400MF", "EfficientNet-B0", "ResNet-50"])
def test_spec_round_trip_through_json(name):
    spec = scale(get_spec(name), "dWr", 2)
    data = json.loads(json.dumps(spec_to_dict(spec)))
    assert data["kind"] in ("anynet", "effnet") and spec_from_dict(data) == spec


def test_workload_from_spec_uses_the_training_resolution_and_round_trips():
    w = Workload.from_spec(get_spec("RegNetY-400MF"), batch=8, options={"threads": 1})
    assert (w.kind, w.batch, w.resolution, w.precision, w.mode) == ("spec", 8, 224, "fp32", "infer")
    assert Workload.from_dict(json.loads(json.dumps(w.to_dict()))) == w and w.model == "RegNetY-400MF"
    f = Workload.from_file("/x/m.onnx", batch=2, resolution=64)
    assert f.kind == "onnx" and f.model == "m.onnx" and Workload.from_file("m.plan", 1, 8).kind == "engine"


@pytest.mark.parametrize("kwargs,needle", [
    ({"kind": "tflite"}, "kind 'tflite'"), ({"batch": 0}, "batch must be"), ({"resolution": 2.5}, "resolution"),
    ({"precision": "int8"}, "precision 'int8'"), ({"mode": "eval"}, "mode 'eval'"), ({"spec": None}, "needs spec"),
    ({"kind": "onnx", "path": None}, "needs a file path"), ({"options": []}, "options must be a dict")])
def test_workload_validation(kwargs, needle):
    base = {"kind": "spec", "spec": {"name": "x"}, "path": None, "batch": 1, "resolution": 8}
    with pytest.raises(ConfigError, match=needle):
        Workload(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"budget_s": 0}, {"min_iters": 50, "max_iters": 10},
                                    {"target_rel_ci": float("nan")}, {"warmup_iters": -1}])
def test_timing_validation(kwargs):
    with pytest.raises(ConfigError):
        TimingConfig(**kwargs)


def test_spec_dict_errors():
    with pytest.raises(ConfigError, match="kind"):
        spec_from_dict({"name": "x"})
    with pytest.raises(ConfigError, match="incomplete"):
        spec_from_dict({"kind": "anynet", "name": "x"})


def test_measurement_round_trip():
    m = Measurement("ort:cpu", "timeout", "still running", None, None, {}, {"threads": 2}, 1.5)
    assert Measurement.from_dict(json.loads(json.dumps(m.to_dict()))) == m and not m.ok
    assert TimingConfig.from_dict(TimingConfig().to_dict()) == TimingConfig()
