import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sweep_fakes
from hwprofile.errors import ConfigError
from hwprofile.profile import Profile
from hwprofile.sweep import SweepConfig, run_sweep
from hwprofile.sweep._config import plan
from sweep_fakes import fake_measure

SMALL = dict(device="cpu", runners=("torch:cpu",), strategies=("w", "d"), scales=(1.0, 2.0), batch_sizes=(1, 2))


def test_default_plan_is_designed_for_the_question():
    """w, r and dWr at s = 4 and 16 beside the base model: equal-flops pairs at two scales (docs/measurement.md)."""
    items, notes = plan(SweepConfig(), "cpu", ["torch:cpu", "ort:cpu"])
    labels = {i.label for i in items}
    assert labels == {"EfficientNet-B0"} | {f"EfficientNet-B0 {s} x{k}" for s in ("w", "r", "dWr") for k in (4, 16)}
    assert len(items) == 7 * 2 * 2 and {i.batch for i in items} == {1, 8} and not notes
    gpu_items, _ = plan(SweepConfig(), "cuda:0", ["torch:cuda"])
    assert {i.batch for i in gpu_items} == {1, 8, 32, 128}


def test_measurements_run_in_a_seeded_shuffled_order():
    """Drift must not line up with scale: the default order is shuffled, the same way every time."""
    shuffled, _ = plan(SweepConfig(), "cpu", ["torch:cpu", "ort:cpu"])
    again, _ = plan(SweepConfig(), "cpu", ["torch:cpu", "ort:cpu"])
    planned, _ = plan(SweepConfig(order="planned"), "cpu", ["torch:cpu", "ort:cpu"])
    assert shuffled == again and sorted(map(repr, shuffled)) == sorted(map(repr, planned))
    scales = [i.scale for i in shuffled]
    assert scales != sorted(scales) and [i.scale for i in planned] == sorted(i.scale for i in planned)
    assert planned[:4] == [i for i in planned if i.strategy is None]  # model by model when planned
    with pytest.raises(ConfigError, match="--order"):
        run_sweep(SweepConfig(order="random"), measure_fn=fake_measure)


def test_sweep_writes_a_valid_profile(tmp_path):
    out = tmp_path / "p.json"
    prof, path, _ = run_sweep(SweepConfig(**SMALL), out, quiet=True, measure_fn=fake_measure)
    assert path == out
    loaded = Profile.load(out)
    assert len(loaded.records) == 3 * 2 and all(r.ok for r in loaded.records)
    assert list(loaded.devices) == [loaded.records[0].device_id]
    base = [r for r in loaded.records if r.strategy is None]
    assert len(base) == 2 and all(r.flops == 385825092 for r in base)
    assert loaded.sweeps[0]["config"]["strategies"] == ["w", "d"]


def test_budget_marks_unreached_configurations_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("HWPROFILE_FAKE_SLEEP", "0.3")
    prof, _, _ = run_sweep(SweepConfig(**SMALL, budget_s=0.5), tmp_path / "p.json", quiet=True,
                           measure_fn=fake_measure)
    statuses = [r.status for r in prof.records]
    assert "ok" in statuses and "skipped" in statuses
    assert all("budget" in r.reason for r in prof.records if r.status == "skipped")


@pytest.mark.slow
def test_resume_redoes_only_unfinished_records(tmp_path, monkeypatch):
    out = tmp_path / "p.json"
    monkeypatch.setenv("HWPROFILE_FAKE_SLEEP", "0.3")
    run_sweep(SweepConfig(**SMALL, budget_s=0.5), out, quiet=True, measure_fn=fake_measure)
    done_before = {r.key(): r.measured_utc for r in Profile.load(out).records if r.ok}
    monkeypatch.setenv("HWPROFILE_FAKE_SLEEP", "0")
    sweep_fakes.CALLS.clear()
    prof, _, _ = run_sweep(SweepConfig(**SMALL, budget_s=None), out, resume=True, quiet=True, measure_fn=fake_measure)
    assert all(r.ok for r in prof.records) and len(prof.records) == 6
    assert len(sweep_fakes.CALLS) == 6 - len(done_before)
    assert all(prof.by_key()[k].measured_utc == t for k, t in done_before.items())


def test_resume_refuses_another_configuration(tmp_path):
    out = tmp_path / "p.json"
    run_sweep(SweepConfig(**SMALL), out, quiet=True, measure_fn=fake_measure)
    before = out.read_text()
    with pytest.raises(ConfigError, match="configuration differs"):
        run_sweep(SweepConfig(**{**SMALL, "scales": (1.0, 4.0)}), out, resume=True, measure_fn=fake_measure)
    data = json.loads(before)
    data["devices"] = {"other-device": {}}
    for r in data["records"]:
        r["device_id"] = "other-device"
    out.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="measured on other-device"):
        run_sweep(SweepConfig(**SMALL), out, resume=True, measure_fn=fake_measure)


def test_existing_output_is_never_overwritten(tmp_path):
    out = tmp_path / "p.json"
    out.write_text("precious")
    with pytest.raises(ConfigError, match="already exists"):
        run_sweep(SweepConfig(**SMALL), out, measure_fn=fake_measure)
    assert out.read_text() == "precious"


def test_unwritable_output_detected_before_measuring(tmp_path):
    sweep_fakes.CALLS.clear()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    target = ro / "sub" / "p.json" if os.geteuid() != 0 else Path("/proc/hwprofile/p.json")
    with pytest.raises(ConfigError, match="cannot write"):
        run_sweep(SweepConfig(**SMALL), target, measure_fn=fake_measure)
    assert not sweep_fakes.CALLS


@pytest.mark.parametrize("changes,needle", [
    (dict(strategies=()), "empty sweep"),
    (dict(models=()), "empty sweep"),
    (dict(batch_sizes=(0,)), "batch-sizes"),
    (dict(runners=("ort:cpu",), mode="train"),
     "needs runners that support it \\(torch:cpu, torch:cuda\\); ort:cpu only infer"),
    (dict(runners=("nope:x",)), "nope:x"),
    (dict(strategies=("XYZ",)), "unknown strategy"),
    (dict(models=("NoSuchNet",)), "unknown model"),
    (dict(budget_s=0), "--budget"),
])
def test_invalid_sweeps(tmp_path, changes, needle):
    with pytest.raises(ConfigError, match=needle):
        run_sweep(SweepConfig(**{**SMALL, **changes}), tmp_path / "p.json", measure_fn=fake_measure)
    assert not (tmp_path / "p.json").exists()


CHILD = """
import signal, sys, time
# ^C raises KeyboardInterrupt even where this child inherits SIGINT ignored (a background job's child: `cmd &` in a
# script); the hwprofile command installs its own handler the same way (hwprofile.lifetime.interrupt_once)
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from hwprofile.sweep._run import SweepConfig, run_sweep
from sweep_fakes import fake_measure
calls = []

def measure(*args, **kw):
    calls.append(args)
    if len(calls) == 3:  # two records are saved: say so, then stay mid-measurement until the test's signal
        print("measuring the third of 7", flush=True)
        time.sleep(600)
    return fake_measure(*args, **kw)

cfg = SweepConfig(device="cpu", runners=("torch:cpu",), strategies=("w", "d", "r"), scales=(1.0, 2.0, 4.0),
                  batch_sizes=(1,))
run_sweep(cfg, {out!r}, quiet=True, measure_fn=measure)
"""
#: how long the child may take to start and save two records on a loaded machine (a handshake, not a sleep)
STARTUP_S = 180.0


def _read_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """The child's first stdout line, or "" if it wrote none within ``timeout_s`` (or ended)."""
    import select

    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    return proc.stdout.readline() if ready else ""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_killed_sweep_leaves_a_valid_file_that_resume_completes(tmp_path, sig, monkeypatch):
    """A sweep killed while it measures its third item (of 7): the two records it finished are in a valid file,
    and ``--resume`` measures the other five. The child says when it is mid-measurement (a handshake), so the
    signal lands mid-sweep however loaded the machine is."""
    out = tmp_path / "p.json"
    code = CHILD.format(tests=str(Path(__file__).parent), out=str(out))
    # stderr goes to a file and the handshake pipe is not read to its end: a process the sweep started (the
    # system check's helpers) may outlive a SIGKILLed parent and hold an inherited pipe open
    with open(tmp_path / "stderr.txt", "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=err_file, text=True)
        try:
            line = _read_line(proc, STARTUP_S)
            assert line == "measuring the third of 7\n", (line, proc.poll())
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode != 0, err
    partial = Profile.load(out)  # valid after any kill
    assert [r.ok for r in partial.records].count(True) == 2 and len(partial.records) < 7, err
    monkeypatch.setenv("HWPROFILE_FAKE_SLEEP", "0")
    cfg = SweepConfig(device="cpu", runners=("torch:cpu",), strategies=("w", "d", "r"), scales=(1.0, 2.0, 4.0),
                      batch_sizes=(1,))
    sweep_fakes.CALLS.clear()
    prof, _, _ = run_sweep(cfg, out, resume=True, quiet=True, measure_fn=fake_measure)
    assert len(prof.records) == 7 and all(r.ok for r in prof.records)
    assert len(sweep_fakes.CALLS) == 7 - 2  # only what the killed sweep had not finished
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] or sig == signal.SIGKILL


def test_runner_options_reach_each_runner_they_apply_to(tmp_path):
    seen = []

    def capture(runner, workload, *args, **kw):
        seen.append((runner, dict(workload.options)))
        return fake_measure(runner, workload, *args, **kw)

    cfg = SweepConfig(**{**SMALL, "strategies": ("w",), "scales": (1.0,), "batch_sizes": (1,)},
                      options={"*": {"threads": 1}, "torch:cpu": {"channels_last": True}})
    run_sweep(cfg, tmp_path / "p.json", quiet=True, measure_fn=capture)
    assert seen and all(opts == {"threads": 1, "channels_last": True} for _, opts in seen)
    shared = SweepConfig(options={"*": {"threads": 2, "iobinding": True}})
    assert shared.runner_options("ort:cpu") == {"threads": 2, "iobinding": True}
    assert shared.runner_options("torch:cpu") == {"threads": 2}  # iobinding is an ORT option
    assert "options" not in SweepConfig(**SMALL).identity() and cfg.identity()["options"]["*"] == {"threads": 1}


@pytest.mark.parametrize("options,needle", [
    ({"ort:cpu": {"threads": 1}}, "not in this sweep"),
    ({"*": {"iobinding": True}}, "no runner of this sweep takes the option 'iobinding'"),
    ({"torch:cpu": {"bogus": 1}}, "unknown option"),
    ({"*": 1}, "runner options must map"),
])
def test_invalid_runner_options(tmp_path, options, needle):
    with pytest.raises(ConfigError, match=needle):
        run_sweep(SweepConfig(**SMALL, options=options), tmp_path / "p.json", measure_fn=fake_measure)
    assert not (tmp_path / "p.json").exists()


@pytest.mark.slow
def test_memory_limit_reaches_each_measurement_and_is_not_identity(tmp_path):
    seen = []

    def capture(runner, workload, *args, **kw):
        seen.append(kw.get("memory_limit_mb"))
        return fake_measure(runner, workload, *args, **{k: v for k, v in kw.items() if k != "memory_limit_mb"})

    cfg = SweepConfig(**SMALL, memory_limit_mb=2048)
    prof, _, _ = run_sweep(cfg, tmp_path / "p.json", quiet=True, measure_fn=capture)
    assert seen == [2048] * 6 and "memory_limit_mb" not in cfg.identity()
    run_sweep(SweepConfig(**SMALL), tmp_path / "q.json", quiet=True, measure_fn=capture)
    assert seen[6:] == [None] * 6  # not given: measure()'s default for the device
    with pytest.raises(ConfigError, match="--memory-limit"):
        run_sweep(SweepConfig(**SMALL, memory_limit_mb=-1), tmp_path / "r.json", measure_fn=capture)


def _loaded(foreign):
    """fake_measure with a given other load on the machine."""
    def measure(*a, **kw):
        out = fake_measure(*a, **kw)
        out["settings"] = {**out["settings"], "foreign_cpu_cores": [foreign]}
        return out
    return measure


@pytest.mark.slow
def test_records_get_a_quality_and_disturbed_ones_are_remeasured_on_resume(tmp_path):
    out = tmp_path / "p.json"
    config = SweepConfig(**SMALL, retries=1, retry_backoff_s=0.0)
    sweep_fakes.CALLS.clear()
    prof, _, _ = run_sweep(config, out, quiet=True, measure_fn=_loaded(1.5))
    assert len(sweep_fakes.CALLS) == 12  # each of 6 records measured twice: disturbed, retried once
    assert {r.quality for r in prof.records} == {"disturbed"}
    assert all("other load" in r.quality_reasons[0] and len(r.settings.to_dict()["quality_attempts"]) == 1
               for r in prof.records)
    assert "retries" not in prof.sweeps[0]["config"]  # how often to retry is not part of what is measured
    sweep_fakes.CALLS.clear()
    prof, _, _ = run_sweep(config, out, resume=True, quiet=True, measure_fn=_loaded(0.2), remeasure="disturbed")
    assert len(sweep_fakes.CALLS) == 6 and {r.quality for r in prof.records} == {"noisy"}
    sweep_fakes.CALLS.clear()
    run_sweep(config, out, resume=True, quiet=True, measure_fn=_loaded(0.0), remeasure="disturbed")
    assert not sweep_fakes.CALLS  # nothing disturbed left
    prof, _, _ = run_sweep(config, out, resume=True, quiet=True, measure_fn=_loaded(0.0), remeasure="unclean")
    assert len(sweep_fakes.CALLS) == 6 and {r.quality for r in Profile.load(out).records} == {"clean"}
    with pytest.raises(ConfigError, match="--remeasure"):
        run_sweep(config, tmp_path / "q.json", quiet=True, measure_fn=fake_measure, remeasure="disturbed")


def test_peaks_are_measured_once_and_stored_in_the_device_entry(tmp_path, monkeypatch):
    import hwprofile.sweep._run

    calls = []
    monkeypatch.setattr(hwprofile.sweep._run, "measure_peaks",
                        lambda device: calls.append(device) or {"device": device, "copy": {"gb_per_s": 10.0},
                                                                "matmul_fp32": {"flops_per_s": 1e11}})
    out = tmp_path / "p.json"
    prof, _, _ = run_sweep(SweepConfig(**SMALL), out, quiet=True, measure_fn=fake_measure, peaks=True)
    assert calls == ["cpu"] and Profile.load(out).device(prof.records[0].device_id).peaks["copy"]
    run_sweep(SweepConfig(**SMALL), out, resume=True, quiet=True, measure_fn=fake_measure, peaks=True)
    assert calls == ["cpu"]  # kept from the first sweep


@pytest.mark.slow
def test_a_retried_record_keeps_the_input_its_first_attempt_made(tmp_path):
    """A disturbed record measured again reuses the ONNX export its first attempt made: its ``prepare`` still
    says the export was made for it (not taken from a cache), with the export's time."""
    config = SweepConfig(device="cpu", runners=("ort:cpu",), models=("RegNetX-200MF",), scales=(1.0,),
                         batch_sizes=(1,), retries=1, retry_backoff_s=0.0, cache_dir=str(tmp_path / "cache"))
    sweep_fakes.CALLS.clear()
    prof, _, _ = run_sweep(config, tmp_path / "p.json", quiet=True, measure_fn=_loaded(1.5))
    (rec,) = prof.records
    assert len(sweep_fakes.CALLS) == 2 and rec.quality == "disturbed"
    assert rec.prepare["input"] == "onnx" and rec.prepare["cached"] is False and rec.prepare["build_s"] > 0


def test_a_record_at_the_tail_of_the_budget_is_skipped_not_killed(tmp_path, monkeypatch):
    """Each record needs 10 s (a GPU child's start alone takes several); with 5 s of the budget left, the sweep
    does not start one that its child's timeout would kill halfway (issue 26): it is 'skipped'."""
    import types

    import hwprofile.sweep._run as sweep_mod

    clock = {"now": 1000.0}
    monkeypatch.setattr(sweep_mod, "time", types.SimpleNamespace(monotonic=lambda: clock["now"],
                                                                  strftime=time.strftime))
    timeouts = []

    def ten_seconds(runner, workload, timing=None, timeout_s=60.0, device="cpu"):
        timeouts.append(timeout_s)
        if timeout_s < 10.0:  # the child would be killed before it finishes
            clock["now"] += timeout_s
            return {"runner": runner, "status": "timeout", "reason": "killed", "latency": None, "throughput": None,
                    "memory": {}, "settings": {}, "wall_s": timeout_s}
        clock["now"] += 10.0
        return fake_measure(runner, workload, timing, timeout_s, device)

    config = SweepConfig(device="cpu", runners=("torch:cpu",), strategies=("w",), scales=(1.0, 2.0),
                         batch_sizes=(1, 2), budget_s=25.0)
    prof, _, _ = run_sweep(config, tmp_path / "p.json", quiet=True, measure_fn=ten_seconds, peaks=False)
    statuses = [r.status for r in prof.records]
    assert statuses == ["ok", "ok", "skipped", "skipped"], statuses
    assert "5 s left, less than the 10 s a record needed" in prof.records[2].reason
    assert prof.records[3].reason.startswith("sweep budget of 25s")
    assert timeouts == [30.0, 20.0]  # every started child had at least what a record needs, plus 5 s
