"""Fault injection: each failing child becomes a status with a reason, and the caller goes on."""

import signal
import subprocess
import sys
import time

import pytest

from hwprofile.errors import ConfigError, RunnerUnavailable
from hwprofile.measure import measure
from hwprofile.measure._isolation import child_status, get_launcher, shutdown, wait_child
from hwprofile.profile import TimingConfig, Workload
from hwprofile.runners._fake import PATH
from hwprofile.runners._registry import register_runner, unregister_runner

FAST = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=5, budget_s=0.2, throughput_window_s=0.05)


pytestmark = pytest.mark.usefixtures("fake_runner")


def _fake(**options):
    return Workload("spec", {"name": "fake"}, None, 2, 8, options=options)


def _ok_after(isolation="auto"):
    """The caller goes on: the next measurement works."""
    m = measure("fake", _fake(latencies_ms=[2.0, 3.0]), FAST, isolation=isolation)
    assert m.status == "ok" and m.latency["median_ms"] in (2.0, 2.5, 3.0)


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["forkserver", "spawn"])
def test_segfault_is_crashed(isolation):
    m = measure("fake", _fake(fault="segfault"), FAST, isolation=isolation)
    assert (m.status, m.reason) == ("crashed", "the child died of SIGSEGV") and m.latency is None
    _ok_after(isolation)


def test_segfault_while_timing_is_crashed():
    m = measure("fake", _fake(fault="segfault", fault_at="infer"), FAST)
    assert m.status == "crashed" and "SIGSEGV" in m.reason
    _ok_after()


def test_memory_limit_is_oom():
    start = time.monotonic()
    m = measure("fake", _fake(fault="alloc", alloc_mb=4096), FAST, memory_limit_mb=600)
    assert m.status == "oom" and "over the 600 MiB limit; killed" in m.reason
    assert time.monotonic() - start < 30
    _ok_after()


def test_memory_error_is_oom():
    m = measure("fake", _fake(fault="memory_error"), FAST)
    assert (m.status, m.reason) == ("oom", "MemoryError: injected allocation failure")


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["forkserver", "spawn"])
def test_hang_is_timeout_and_killed(isolation):
    start = time.monotonic()
    m = measure("fake", _fake(fault="hang"), FAST, timeout_s=1.5, isolation=isolation)
    assert m.status == "timeout" and "1.5 s timeout; killed" in m.reason
    assert 1.5 <= time.monotonic() - start < 20
    _ok_after(isolation)


def test_exception_is_failed_with_one_line():
    m = measure("fake", _fake(fault="raise"), FAST)
    assert (m.status, m.reason) == ("failed", "RuntimeError: injected failure")


def test_unsupported_is_reported_without_a_child():
    m = measure("fake", _fake(unsupported="fake cannot do that"), FAST)
    assert (m.status, m.reason, m.latency) == ("unsupported", "fake cannot do that", None)


def test_repeats_are_separate_processes():
    m = measure("fake", _fake(latencies_ms=[4.0]), TimingConfig(min_iters=5, budget_s=0.2, repeats=3,
                                                                 throughput_window_s=0.02, warmup_s=0))
    lat = m.latency
    assert m.status == "ok" and lat["repeats"] == 3 and len(lat["samples_ms"]) == 3 and lat["medians_ms"] == [4.0] * 3
    assert len(m.throughput["per_repeat_samples_per_s"]) == 3 and lat["timing_method"] == "scripted"
    assert m.settings["stop_reasons"] == ["ci"] * 3


def test_bad_input_raises_before_any_child():
    with pytest.raises(ConfigError, match="unknown runner"):
        measure("nope", _fake())
    with pytest.raises(ConfigError, match="unknown option"):
        measure("fake", _fake(colour="red"))
    with pytest.raises(ConfigError, match="isolation"):
        measure("fake", _fake(), isolation="thread")


def test_unavailable_runner_raises_exit_3():
    with pytest.raises(RunnerUnavailable) as info:
        measure("trt", Workload.from_file("m.engine", 1, 8), device="cpu")
    assert info.value.exit_code == 3 and "available on cpu: torch:cpu, ort:cpu" in str(info.value)


def test_fork_server_is_preloaded_and_single_threaded():
    launcher = get_launcher("cpu")
    measure("fake", _fake(), FAST)
    info = launcher.info()
    assert info["isolation"] == "forkserver" and info["server_threads_at_fork"] is not None
    assert any("runners._torch" in p for p in info["server_preloaded"])
    # onnxruntime's import starts one idle housekeeping thread; torch and numpy start none
    assert info["server_threads_at_fork"] <= 2


def test_wait_child_reports_signal_and_rusage():
    """A child of our own (in its own process group, as the fork server makes them) that touches 64 MiB and dies of
    SIGTERM. A fresh interpreter, not a fork of this one: a fork of the test process with threads running could hang,
    and one that survived its signal would go on running tests."""
    code = "import os, signal\ndata = bytearray(b'\\x01') * (64 << 20)\nos.kill(os.getpid(), signal.SIGTERM)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], process_group=0)
    exit = wait_child(proc.pid, 120, None)
    proc.returncode = -signal.SIGTERM  # reaped by wait_child: Popen must not wait for it again
    assert exit["signal"] == signal.SIGTERM and exit["exitcode"] is None and exit["maxrss_mb"] >= 64
    assert child_status(exit, None, 10, None) == ("crashed", "the child died of SIGTERM")


def test_classify_kernel_kill_and_peak_over_cap():
    base = {"killed": None, "signal": None, "exitcode": 0, "maxrss_mb": 100.0, "rss_seen_mb": 50.0}
    assert child_status({**base, "signal": signal.SIGKILL}, None, 5, None)[0] == "oom"
    assert child_status({**base, "maxrss_mb": 900.0}, {"status": "ok"}, 5, 800)[0] == "oom"
    assert child_status({**base, "exitcode": 70}, None, 5, None, "Traceback: boom") == (
        "crashed", "the child exited with code 70 and no result: Traceback: boom")


@pytest.mark.slow
def test_a_dead_fork_server_is_replaced():
    launcher = get_launcher("cpu")
    measure("fake", _fake(), FAST)
    launcher._proc.kill()
    launcher._proc.wait()
    _ok_after()
    assert launcher.alive()


def test_other_work_on_the_machine_is_recorded():
    """A busy loop beside the measurement shows up as about one foreign core."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        m = measure("fake", _fake(latencies_ms=[5.0], sleep=True),
                    TimingConfig(warmup_iters=1, warmup_s=0, min_iters=1000, budget_s=0.6, throughput_window_s=0))
    finally:
        hog.kill()
        hog.wait()
    assert m.status == "ok" and m.settings["foreign_cpu_cores"][0] >= 0.5


def _process_tree_busy_s() -> float:
    """CPU seconds spent by this process and its descendants (the reaped ones included): the machine's busy time
    as :func:`hwprofile.measure._isolation.cpu_busy_s` would read it if nothing else ran on the machine."""
    import psutil

    total = 0.0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:  # ended between the listing and the reading: its parent's children_* hold it
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


@pytest.mark.slow
def test_the_fork_servers_own_start_is_not_other_load(monkeypatch):
    """The first measurement starts the fork server (imports, ~1 s of CPU): that is hwprofile's own
    work before the child starts, not load beside the child. The machine's busy time is read from this
    process tree only, so other load on a shared machine does not enter the reading: a server start
    counted inside the child's window would show as about 2 foreign cores."""
    from hwprofile.measure import _isolation as isolation

    monkeypatch.setattr(isolation, "cpu_busy_s", _process_tree_busy_s)
    shutdown()
    m = measure("fake", _fake(latencies_ms=[5.0], sleep=True),
                TimingConfig(warmup_iters=1, warmup_s=0, min_iters=20, budget_s=0.3, throughput_window_s=0))
    assert m.status == "ok" and get_launcher("cpu").info()["server_import_s"] is not None
    assert m.settings["foreign_cpu_cores"][0] < 0.5, m.settings


@pytest.mark.slow
def test_gpu_children_have_nvml_sampled_by_the_parent(monkeypatch, tmp_path):
    """NVML (device-wide) is polled in the parent, so no sampling thread competes with the timed loop."""
    from hwprofile.measure import _isolation as isolation
    from hwprofile.measure._core import _memory
    from hwprofile.measure._isolation import SpawnLauncher

    started = []

    class Sampler:
        def stop(self):
            return 123.0

    monkeypatch.setattr(isolation, "start_nvml", lambda device: started.append(device) or Sampler())
    job = {"type": "measure", "runner_path": PATH, "device": "cuda:0", "workload": _fake().to_dict(),
           "timing": FAST.to_dict()}
    exit, _, _ = SpawnLauncher().run(job, 60, None)
    assert started == ["cuda:0"] and exit["nvml_used_delta_mb"] == 123.0

    class Lost:
        def stop(self):
            raise RuntimeError("NVMLError_GpuIsLost")

    monkeypatch.setattr(isolation, "start_nvml", lambda device: started.append(device) or Lost())
    exit, _, _ = SpawnLauncher().run(job, 60, None)  # no reading, no traceback: the child's own result stands
    assert "nvml_used_delta_mb" not in exit and exit["exitcode"] == 0
    started.clear()
    exit, _, _ = SpawnLauncher().run({**job, "type": "baseline"}, 60, None)
    assert "nvml_used_delta_mb" not in exit and started == []
    runs = [({"maxrss_mb": 10.0, "nvml_used_delta_mb": 5.0}, {"memory": {}}),
            ({"maxrss_mb": 12.0, "nvml_used_delta_mb": 7.0}, {"memory": {}})]
    assert _memory(runs, None)["nvml_used_delta_mb"]["value_mb"] == 7.0


def test_memory_cap_is_for_cpu_children_unless_given():
    """GPU children's RSS holds the CUDA context and the libraries' host copies: the CPU default cap is not
    theirs to be killed by; --memory-limit applies to both; 0 means none."""
    from hwprofile.measure._isolation import default_memory_limit_mb, memory_cap_mb

    assert memory_cap_mb("cpu") == default_memory_limit_mb()
    assert memory_cap_mb("cuda:0") is None and memory_cap_mb("cuda:1") is None
    assert memory_cap_mb("cuda:0", 4096) == 4096.0 and memory_cap_mb("cpu", 600) == 600.0
    assert memory_cap_mb("cpu", 0) is None


@pytest.mark.slow
def test_measure_passes_the_cap_for_the_device(monkeypatch):
    from hwprofile.measure import _isolation as isolation

    caps = []
    real = isolation.get_launcher

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def run(self, job, timeout_s, cap):
            caps.append(cap)
            return self.inner.run(job, timeout_s, cap)

    monkeypatch.setattr("hwprofile.measure._core.get_launcher",
                        lambda device, isolation="auto": Spy(real(device, isolation)))
    assert measure("fake", _fake(), FAST).ok and caps[-1] == isolation.default_memory_limit_mb()
    assert measure("fake", _fake(), FAST, memory_limit_mb=0).ok and caps[-1] is None
    assert measure("fake", _fake(), FAST, memory_limit_mb=900).ok and caps[-1] == 900.0
    # a GPU runner's child is not killed by the CPU default cap, only by one given
    from hwprofile import env
    from hwprofile.runners._fake import PATH_CUDA

    monkeypatch.setattr(env, "gpu_names", lambda: ["Fake GPU"])
    register_runner("fake:cuda", PATH_CUDA)
    try:
        assert measure("fake:cuda", _fake(), FAST, device="cuda:0").ok and caps[-1] is None
        assert measure("fake:cuda", _fake(), FAST, device="cuda:0", memory_limit_mb=2048).ok and caps[-1] == 2048.0
    finally:
        unregister_runner("fake:cuda")


def test_the_parents_own_cpu_time_is_not_foreign_load(monkeypatch):
    """On GPU the parent samples NVML from a thread while the child runs: that CPU time is this process's
    own, not other load on the machine."""
    from hwprofile.measure import _isolation as isolation

    busy = iter([100.0])

    class Busy(isolation.Launcher):
        def _start_and_wait(self, job, stderr, timeout_s, cap):
            start, own = time.monotonic(), time.process_time()
            while time.process_time() - own < 0.3:  # the parent's sampling thread and wait loop, burning CPU
                pass
            # the machine's busy time grew by exactly what this process burned: there was no other load
            busy_after[0] = 100.0 + (time.process_time() - own)
            return {"pid": 0, "exitcode": 0, "signal": None, "maxrss_mb": 1.0, "cpu_s": 0.0, "killed": None,
                    "rss_seen_mb": 1.0, "wall_s": time.monotonic() - start}

    busy_after = [None]
    monkeypatch.setattr(isolation, "cpu_busy_s", lambda: next(busy, None) or busy_after[0])
    exit, _, _ = Busy().run({"type": "measure"}, 10, None)
    assert exit["foreign_cpu_cores"] == 0.0, exit


def test_other_load_is_unknown_when_the_childs_cpu_time_is():
    """The fork server's fallback exit (a lost child) has no CPU time: counting the child's work as other load
    would grade the record disturbed, so the reading is None, not a guess."""
    from hwprofile.measure._isolation import ChildExit, _foreign_cores, cpu_busy_s

    lost = ChildExit(pid=None, exitcode=None, signal=None, maxrss_mb=0.0, cpu_s=None, killed="timeout",
                     rss_seen_mb=0.0, wall_s=1.0)
    assert _foreign_cores(cpu_busy_s(), lost) is None
    known = ChildExit(**{**lost, "cpu_s": 0.0})
    assert _foreign_cores(cpu_busy_s(), known) is not None or cpu_busy_s() is None
