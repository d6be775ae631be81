"""Property-based tests (hypothesis, derandomized) for the surfaces of issue 22: the Python API's arguments,
the bounds table, and the numeric flags of ``layers``, ``run --plan`` and ``check``. Every outcome is a result
or a one-line hwprofile error (exit 2, or a HwprofileError subclass from the API): never another exception,
nothing measured when an argument is out of bounds, and nothing written."""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwprofile
from hwprofile import bounds
from hwprofile.bounds import BOUNDS
from hwprofile.errors import ConfigError, HwprofileError

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
FIXTURES = Path(__file__).resolve().parent / "data" / "profiles"

leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 3, 4, 8, 16, 100, 1000, 4096, 4097, 10**6, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 0.5, 1.0, 4.0, 1e-300, 1e300]),
    st.text(max_size=8), st.sampled_from(["", "1", "dWr", "cpu", "ort:cpu", "RegNetX-200MF", "x.onnx", "\x00"]),
)
value = st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.tuples(c, c) | st.dictionaries(
    st.sampled_from(["*", "ort:cpu", "threads", "repeats", "budget_s", "max_iters", "x"]), c, max_size=3),
    max_leaves=6)


@contextlib.contextmanager
def workspace():
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="hwprofile-surfaces-") as tmp:
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


def assert_one_line(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwprofile"), err


class Measured(BaseException):
    """Raised by the stand-ins: the arguments were accepted and work would start."""


@pytest.fixture(scope="module")
def guarded():
    """Nothing can be measured, exported or swept in this module: each stand-in raises Measured."""
    from hwprofile.cli import layers_run as layers_cli
    from hwprofile.sweep import _run as sweep

    def stop(*_a, **_k):
        raise Measured

    mp = pytest.MonkeyPatch()
    for module, name in ((sweep, "run_sweep"), (sweep, "measure_items"), (sweep, "measure_peaks"),
                         (layers_cli, "measure_layers"), (layers_cli, "to_onnx"), (layers_cli, "to_tensorrt")):
        mp.setattr(module, name, stop)
    import hwprofile.gate._session as gs
    mp.setattr(gs, "measure_in_rounds", stop)
    yield
    mp.undo()


# ----------------------------------------------------------------------------- the bounds table

@settings(max_examples=400, **SETTINGS)
@given(st.sampled_from(list(BOUNDS)), leaf)
def test_a_bound_returns_a_value_in_range_or_one_line(name, v):
    b = BOUNDS[name]
    try:
        got = b.check(v, "--flag")
    except ConfigError as exc:
        assert str(exc).startswith("--flag ") and "\n" not in str(exc) and len(str(exc)) < 200
        return
    assert not isinstance(v, bool)
    assert math.isfinite(got) and b.low <= got <= b.upper and not (b.low_open and got == b.low)
    assert isinstance(got, int) if b.integer else isinstance(got, float)


@settings(max_examples=300, **SETTINGS)
@given(st.sampled_from(list(BOUNDS)), st.one_of(st.text(max_size=12), st.integers().map(str),
                                                 st.floats().map(repr)))
def test_a_bound_as_an_argparse_type(name, text):
    parse = bounds.arg(name, "--flag")
    try:
        got = parse(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc) and "expected" in str(exc)
        return
    assert BOUNDS[name].check(got, "--flag") == got


# ----------------------------------------------------------------------------- the Python API

RUN_FIELDS = ["device", "runners", "models", "strategies", "scales", "batch_sizes", "precision", "mode", "budget_s",
              "timing", "options", "timeout_s", "cache_dir", "retries", "retry_backoff_s", "layers",
              "memory_limit_mb", "out", "resume", "quiet", "bogus"]


@pytest.mark.slow
@settings(max_examples=400, **SETTINGS)
@given(st.dictionaries(st.sampled_from(RUN_FIELDS), value, min_size=1, max_size=4))
def test_run_takes_its_arguments_or_names_the_bad_one(guarded, kwargs):
    base = {"device": "cpu", "runners": ("ort:cpu",), "models": ("RegNetX-200MF",), "scales": (1,),
            "batch_sizes": (1,)}
    with workspace() as ws:
        try:
            hwprofile.run(**{**base, **kwargs})
        except Measured:
            pass  # every argument was accepted
        except HwprofileError as exc:
            assert isinstance(exc, ConfigError) or exc.exit_code == 3, exc
            assert str(exc).startswith("hwprofile.run: ") or exc.exit_code == 3, exc
            assert "\n" not in str(exc)
        assert list(ws.iterdir()) == []


@pytest.mark.slow
@settings(max_examples=200, **SETTINGS)
@given(value, value, st.dictionaries(st.sampled_from(["metrics", "thresholds", "confidence", "seed", "remeasure",
                                                      "allow_mismatch", "update_baseline", "out", "quiet",
                                                      "batch_sizes", "timing", "gate", "on_message"]),
                                     value, max_size=3))
def test_check_takes_its_arguments_or_names_the_bad_one(guarded, baseline, current, kwargs):
    with workspace() as ws:
        try:
            result = hwprofile.check(baseline, current, **kwargs)
        except Measured:
            return
        except HwprofileError as exc:
            assert "\n" not in str(exc) and exc.exit_code in (2, 3), exc
        else:
            assert result.exit_code in (0, 1, 3)
        assert [p for p in ws.iterdir()] == []


SPECS = [hwprofile.get_spec("RegNetX-200MF"), hwprofile.get_spec("EfficientNet-B0")]


@pytest.mark.slow
@settings(max_examples=400, **SETTINGS)
@given(st.sampled_from(["get_spec", "resolve", "scale", "scaling_factors", "complexity"]),
       st.one_of(value, st.sampled_from(SPECS)), value, value)
def test_the_science_api_returns_or_raises_a_hwprofile_error(func, a, b, c):
    call = {"get_spec": lambda: hwprofile.get_spec(a), "resolve": lambda: hwprofile.resolve(a, b, c),
            "scale": lambda: hwprofile.scale(a, b, c), "scaling_factors": lambda: hwprofile.scaling_factors(b, c),
            "complexity": lambda: hwprofile.zoo.complexity(a, b)}[func]
    try:
        out = call()
    except HwprofileError as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc), exc
        return
    assert out is not None


@settings(max_examples=200, **SETTINGS)
@given(st.dictionaries(st.sampled_from(["metrics", "thresholds", "confidence", "seed", "remeasure",
                                        "allow_mismatch", "update_baseline", "out", "quiet"]), value, max_size=4))
def test_gate_options_take_their_arguments_or_name_the_bad_one(kwargs):
    try:
        hwprofile.GateOptions(**kwargs)
    except HwprofileError as exc:
        assert exc.exit_code == 2 and "\n" not in str(exc), exc


# ----------------------------------------------------------------------------- the CLI's flags

number_text = st.one_of(st.integers(min_value=-10, max_value=10**12).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(["0", "-0", "1", "4", "4096", "4097", "1e9", "nan", "inf", "", "abc", "1.5",
                                         "2", "1000", "1001", "1,2", "0x10"]))
LAYERS_FLAGS = ["--batch", "--resolution", "--iterations", "--threads", "--top", "--scale"]


@pytest.mark.slow
@settings(max_examples=250, **SETTINGS)
@given(st.dictionaries(st.sampled_from(LAYERS_FLAGS), number_text, min_size=1, max_size=3), st.booleans())
def test_layers_flags_start_work_or_are_one_line(guarded, flags, scaled):
    argv = ["layers", "RegNetX-200MF", "--runner", "ort:cpu", "--device", "cpu"]
    if scaled or "--scale" in flags:
        argv += ["--strategy", "dWr"]
    for flag, text in flags.items():
        argv += [flag, text] if not text.startswith("-") else [f"{flag}={text}"]
    with workspace() as ws:
        try:
            code, err = run_cli(*argv)
        except Measured:  # accepted: every value is within its bound
            for flag, text in flags.items():
                name = {"--batch": "batch", "--resolution": "resolution", "--iterations": "layer_runs",
                        "--threads": "threads"}.get(flag)
                if name:
                    BOUNDS[name].check(int(text), flag)
            return
        assert_one_line(code, err)
        assert list(ws.iterdir()) == []


PLAN_FLAGS = ["--batch-sizes", "--scales", "--repeats", "--layers", "--threads", "--budget", "--seconds-per-config",
              "--retries", "--retry-backoff"]


@pytest.mark.slow
@settings(max_examples=250, **SETTINGS)
@given(st.dictionaries(st.sampled_from(PLAN_FLAGS), number_text, min_size=1, max_size=3),
       st.sampled_from(["run --plan", "run", "check"]))
def test_run_plan_and_check_flags_are_taken_or_one_line(guarded, flags, command):
    head = {"run --plan": ["run", "--plan"], "run": ["run"],
            "check": ["check", "--baseline", str(FIXTURES / "cpu-a.json")]}[command]
    argv = [*head, "--models", "RegNetX-200MF", "--runners", "ort:cpu", "--device", "cpu", "--strategies", "w",
            "--json"]
    for flag, text in flags.items():
        argv += [flag, text] if not text.startswith("-") else [f"{flag}={text}"]
    with workspace() as ws:
        try:
            code, err = run_cli(*argv)
        except Measured:
            assert command != "run --plan"
            return
        if code == 0:
            assert command == "run --plan"
        else:
            assert_one_line(code, err)
        assert list(ws.iterdir()) == []
