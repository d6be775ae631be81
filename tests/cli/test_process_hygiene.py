"""Issue 22, process hygiene: however hwprofile ends (``timeout -s KILL``, ``timeout -s INT``, ``kill -9`` or
SIGTERM of its own pid only), no process it started is alive 5 s later; SIGINT and SIGTERM end it with one line
that names the file to ``--resume``, never a traceback.

Each test runs ``tests/fake_cli.py run`` (the real CLI, the real fork server and measuring child, the scripted
fake runner whose measurement hangs) as a real process tree marked by an environment variable, waits until
the measuring child exists (a handshake, not a sleep), ends it, and lists the marked processes. ``timeout``
is made to act by SIGALRM, which it treats exactly as its own timer running out (it then signals the command
and the command's process group), so the test does not wait 20 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

FAKE_CLI = str(Path(__file__).resolve().parents[1] / "fake_cli.py")
MARK = "HWPROFILE_TEST_PROCESS_MARK"
START_S = 300.0  # the fork server imports torch and onnxruntime first: minutes on a loaded machine at worst
GRACE_S = 5.0


def marked(mark: str) -> list:
    """Live (not zombie) processes whose environment carries ``mark``."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARK) == mark:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def measuring_child(mark: str):
    """The forked measuring child: a marked fork-server process whose parent is the fork server."""
    for proc in marked(mark):
        try:
            parent = proc.parent()
            if parent is not None and "hwprofile.measure._forkserver" in " ".join(proc.cmdline()) \
                    and "hwprofile.measure._forkserver" in " ".join(parent.cmdline()):
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return None


def wait_for(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"hwprofile ended before {what}: exit {proc.returncode}\n{err.decode(errors='replace')}")
        time.sleep(0.1)
    pytest.fail(f"no {what} within {timeout_s:g} s")


def none_left(mark: str) -> list:
    """Processes still alive ``GRACE_S`` after the end (polled: a kill takes a moment to land)."""
    deadline = time.monotonic() + GRACE_S
    while True:
        alive = marked(mark)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def describe(procs) -> list:
    out = []
    for p in procs:
        try:
            out.append((p.pid, p.status(), p.ppid(), p.cmdline()))
        except psutil.Error as exc:
            out.append((p.pid, type(exc).__name__))
    return out


def kill_all(procs) -> None:
    for proc in procs:  # only processes this test started (they carry its mark)
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def hanging_run(tmp_path: Path, *prefix: str):
    """A ``run`` whose only measurement hangs, marked; returns (Popen, mark, profile path)."""
    mark = uuid.uuid4().hex
    out = tmp_path / "p.json"
    env = {**os.environ, MARK: mark, "HWPROFILE_CACHE": str(tmp_path / "cache")}
    cmd = [*prefix, sys.executable, FAKE_CLI, "run", "--runners", "fake", "--models", "RegNetX-200MF",
           "--strategies", "w", "--scales", "1", "--batch-sizes", "1", "--option", "fault=hang", "--retries", "0",
           "--no-peaks", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=tmp_path)
    return proc, mark, out


def assert_interrupted(err: str, out: Path) -> None:
    """stderr of an interrupted ``run``: its start line (printed even with --quiet), then the file to resume."""
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("hwprofile run: 1 records on cpu (fake), estimated "), err
    assert lines[1] == (f"hwprofile: interrupted; the profile so far is saved in {out}: continue with "
                        f"hwprofile run --resume {out}"), err


needs_timeout = pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")


@needs_timeout
@pytest.mark.slow
@pytest.mark.parametrize("sig", ["KILL", "INT"])
def test_timeout_leaves_no_process_behind(tmp_path, sig):
    proc, mark, out = hanging_run(tmp_path, "timeout", "--preserve-status", "-s", sig, "600")
    try:
        wait_for(lambda: measuring_child(mark), START_S, "measuring child", proc)
        os.kill(proc.pid, signal.SIGALRM)  # timeout's own timer, run out now
        _, err = proc.communicate(timeout=120)
        left = none_left(mark)
    finally:
        kill_all(marked(mark))
        if proc.poll() is None:
            proc.kill()
    assert left == [], describe(left)
    err = err.decode(errors="replace")
    if sig == "INT":
        assert proc.returncode == 130, err
        assert_interrupted(err, out)
        assert json.loads(out.read_text())["schema"] == "hwprofile.profile"  # the work so far, readable
    else:
        assert proc.returncode in (-9, 137), err


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "term"])
def test_a_signal_to_hwprofile_alone_leaves_no_process_behind(tmp_path, sig):
    """Only hwprofile's own pid is signalled (a CI runner that kills the job's main process): the fork server
    and the measuring child go with it."""
    proc, mark, out = hanging_run(tmp_path)
    try:
        wait_for(lambda: measuring_child(mark), START_S, "measuring child", proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        left = none_left(mark)
    finally:
        kill_all(marked(mark))
        if proc.poll() is None:
            proc.kill()
    assert left == [], describe(left)
    err = err.decode(errors="replace")
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and "Traceback" not in err, err
        assert_interrupted(err, out)
    else:
        assert proc.returncode == -signal.SIGKILL


WATCHER = r"""
import os, sys, threading, json
from hwprofile.runners import register_runner
from hwprofile.runners._fake import PATH
from hwprofile.profile import TimingConfig, Workload
from hwprofile.measure._isolation import ForkServer, SpawnLauncher

register_runner("fake", PATH)
launcher = ForkServer([]) if sys.argv[1] == "forkserver" else SpawnLauncher()
if sys.argv[1] == "forkserver":
    started = threading.Thread(target=launcher.start)  # not the main thread: no PDEATHSIG for the server
    started.start(); started.join()
    print(json.dumps({"server": launcher._proc.pid}), flush=True)
else:
    print(json.dumps({"server": None}), flush=True)
job = {"type": "measure", "runner_path": PATH, "device": "cpu",
       "workload": Workload("spec", {"name": "fake"}, None, 1, 8, options={"fault": "hang"}).to_dict(),
       "timing": TimingConfig().to_dict()}
threading.Thread(target=launcher.run, args=(job, 600.0, None), daemon=True).start()  # measured from a thread
threading.Event().wait()
"""


def spawned_child(mark: str):
    for proc in marked(mark):
        try:
            if "hwprofile.measure._child" in " ".join(proc.cmdline()):
                return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return None


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["forkserver", "spawn"])
def test_children_started_from_a_thread_die_with_their_parent(tmp_path, launcher):
    """A fork server started from another thread gets no PDEATHSIG (it follows the starting thread): it still
    notices that its parent is gone while it waits for a hanging child, kills the child and exits. A spawned
    (GPU-path) child measured from a thread dies with its parent: the thread that started it waits for it."""
    mark = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-c", WATCHER, launcher], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, MARK: mark}, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode(errors="replace")
        server = json.loads(line)["server"]
        if server is not None:  # started without asking for the death signal: only its own watch can help
            assert "prctl" not in " ".join(psutil.Process(server).cmdline())
        find = measuring_child if launcher == "forkserver" else spawned_child
        wait_for(lambda: find(mark), START_S, "measuring child", proc)
        proc.kill()
        proc.wait(timeout=60)
        left = none_left(mark)
    finally:
        kill_all(marked(mark))
        if proc.poll() is None:
            proc.kill()
    assert left == [], describe(left)


def test_die_with_parent_exits_an_orphan_at_once():
    """A child whose parent is gone before it asks for the death signal exits instead of running on."""
    code = ("import os, sys\nfrom hwprofile.lifetime import die_with_parent\n"
            "die_with_parent(os.getppid() + 1_000_000)\nprint('ran on')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 128 + signal.SIGKILL and "ran on" not in done.stdout


def test_interrupt_once_ignores_the_second_sigint():
    from hwprofile.lifetime import interrupt_once

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set from the main thread")
    old = signal.signal(signal.SIGINT, interrupt_once)
    try:
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)  # ignored: no second KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, old)
