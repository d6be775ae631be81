"""Child processes for measurements: a fork server on CPU, spawned children on GPU.

Each child runs one job with a timeout and a watched RSS cap, in its own process group. Its exit
is read with ``os.wait4`` (status and the child's own ``ru_maxrss``), so a crash, an out-of-memory
or a hang becomes a status with a reason and the caller goes on.

The fork server (``python -m hwprofile.measure._forkserver``) imports torch, onnxruntime and the
runner modules once and then forks one child per job: it has run no computation and created no
compute thread pool (OpenBLAS, which numpy would start at import, is limited to one thread; nothing
hwprofile times uses it). CUDA does not survive a fork, so GPU jobs are spawned fresh.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, NotRequired, TypedDict, cast

from hwprofile.atomic import write_text
from hwprofile.errors import ConfigError, EnvironmentProblem
from hwprofile.lifetime import guarded
from hwprofile.runners import RUNNER_NAMES, runner_class, runner_path
from hwprofile.trackers.memory import rss_mb, start_nvml, total_ram_mb

POLL_S = 0.02  # how often a waiting parent checks the child's RSS (cheap: one /proc read)


def default_memory_limit_mb() -> float:
    return 0.85 * total_ram_mb()


def memory_cap_mb(device: str, memory_limit_mb: float | None = None) -> float | None:
    """The host-memory (RSS) cap a measuring child is killed at: ``memory_limit_mb`` when given (0: none);
    by default 85% of RAM on CPU and none on GPU, whose children's RSS holds the CUDA context, pinned
    buffers and the libraries' host copies rather than the model's working set (the device's own
    out-of-memory is the GPU limit)."""
    if memory_limit_mb is not None:
        return float(memory_limit_mb) or None
    return default_memory_limit_mb() if not str(device).startswith("cuda") else None


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class ChildExit(TypedDict):
    """How a measuring child ended, read by its parent (wait4 and the RSS polls); ``cpu_s`` is None when the fork
    server lost the child and nothing was read."""

    pid: int | None
    exitcode: int | None
    signal: int | None
    maxrss_mb: float
    cpu_s: float | None
    killed: str | None  # timeout | memory | abandoned | None
    rss_seen_mb: float
    wall_s: float
    foreign_cpu_cores: NotRequired[float | None]  # set by Launcher.run: other work on the CPU meanwhile
    nvml_used_delta_mb: NotRequired[float]  # set by the spawn launcher on GPU: device memory the child added


def wait_child(pid: int, timeout_s: float, mem_cap_mb: float | None, poll_s: float = POLL_S,
               stop_if: Callable[[], bool] | None = None) -> ChildExit:
    """Wait for child ``pid`` (ours), killing its group on timeout, when its RSS passes the cap, or when
    ``stop_if()`` says the wait is pointless (the fork server's parent is gone)."""
    start = time.monotonic()
    deadline = start + timeout_s
    fd, killed, seen = _pidfd(pid), None, 0.0
    try:
        while True:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                break  # exited, not yet reaped: its pid (and group id) cannot be reused yet
            if killed is None and stop_if is not None and stop_if():
                killed = "abandoned"
                _kill_group(pid)
            if killed is None and time.monotonic() >= deadline:
                killed = "timeout"
                _kill_group(pid)
            seen = max(seen, rss_mb(pid) or 0.0)
            if killed is None and mem_cap_mb and seen > mem_cap_mb:
                killed = "memory"
                _kill_group(pid)
            wait = max(0.0, min(poll_s, deadline - time.monotonic())) if killed is None else poll_s
            if fd is not None:
                select.select([fd], [], [], wait)
            else:
                time.sleep(wait)
    finally:
        if fd is not None:
            os.close(fd)
    _kill_group(pid)  # grandchildren left in the group (e.g. compile workers)
    _, status, usage = os.wait4(pid, 0)
    return ChildExit(pid=pid, exitcode=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                     signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                     maxrss_mb=usage.ru_maxrss / 1024, cpu_s=usage.ru_utime + usage.ru_stime, killed=killed,
                     rss_seen_mb=seen, wall_s=time.monotonic() - start)


def cpu_busy_s() -> float | None:
    """Seconds of CPU time all cores have spent busy since boot (/proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    except (OSError, ValueError, IndexError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _foreign_cores(busy0: float | None, exit: ChildExit, own_s: float = 0.0) -> float | None:
    """Average number of cores busy with other work while the child ran: all CPU time minus the child's
    and minus this process's own (``own_s``: the waiting loop and, on GPU, the NVML sampling thread); None when
    the child's CPU time is unknown (counting it as other work would grade the record disturbed)."""
    busy1 = cpu_busy_s()
    child_s = exit.get("cpu_s")
    if busy0 is None or busy1 is None or child_s is None or exit["wall_s"] <= 0:
        return None
    return round(max(0.0, busy1 - busy0 - child_s - own_s) / exit["wall_s"], 3)


def _tail(path: Path, limit: int = 240) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""


def child_status(exit: dict, result: dict | None, timeout_s: float, mem_cap_mb: float | None,
             stderr_tail: str = "") -> tuple[str, str | None]:
    """(status, reason) of one child from its exit and its result (None when it wrote none)."""
    tail = f": {stderr_tail}" if stderr_tail else ""
    if exit["killed"] == "timeout":
        return "timeout", f"still running after the {timeout_s:g} s timeout; killed"
    if exit["killed"] == "memory":
        return "oom", f"RSS reached {exit['rss_seen_mb']:.0f} MiB, over the {mem_cap_mb:.0f} MiB limit; killed"
    if mem_cap_mb and exit["maxrss_mb"] > mem_cap_mb:
        return "oom", f"peak RSS {exit['maxrss_mb']:.0f} MiB exceeded the {mem_cap_mb:.0f} MiB limit"
    sig = exit["signal"]
    if sig == signal.SIGKILL:
        return "oom", "killed by SIGKILL (most likely the kernel's out-of-memory killer)"
    if sig:
        return "crashed", f"the child died of {signal.Signals(sig).name}{tail}"
    if result is not None:
        return result["status"], result.get("reason")
    return "crashed", f"the child exited with code {exit['exitcode']} and no result{tail}"


class Launcher:
    """Runs one job in a fresh child; subclasses say how the child starts."""

    method = ""

    def __init__(self) -> None:
        self._baselines: dict[tuple, dict] = {}

    def run(self, job: dict, timeout_s: float, mem_cap_mb: float | None) -> tuple[ChildExit, dict | None, str]:
        """(exit info, result or None, last stderr line) of ``job`` run in a child."""
        with tempfile.TemporaryDirectory(prefix="hwprofile-") as tmp:
            job = {**job, "result_path": str(Path(tmp) / "result.json")}
            stderr = Path(tmp) / "stderr.txt"
            self.ready_up()  # a launcher's own start is not other load on the child
            busy0, own0 = cpu_busy_s(), time.process_time()
            exit = self._start_and_wait(job, stderr, timeout_s, mem_cap_mb)
            exit["foreign_cpu_cores"] = _foreign_cores(busy0, exit, time.process_time() - own0)
            result_path = Path(job["result_path"])
            result = json.loads(result_path.read_text()) if result_path.exists() else None
            return exit, result, _tail(stderr)

    def baseline(self, runner_path: str, device: str, timeout_s: float = 120.0) -> dict | None:
        """Exit info of a child that only loaded the runner's libraries (cached)."""
        key = (runner_path, device)
        if key not in self._baselines:
            exit, result, _ = self.run({"type": "baseline", "runner_path": runner_path, "device": device},
                                       timeout_s, None)
            if result is None or result.get("status") != "ok":
                return None
            self._baselines[key] = {**exit, "rss_mb": result.get("rss_mb")}
        return self._baselines[key]

    def ready_up(self) -> None:
        """Start whatever the launcher needs before a child can start (nothing by default)."""

    def _start_and_wait(self, job: dict, stderr: Path, timeout_s: float, cap: float | None) -> ChildExit:
        raise NotImplementedError

    def info(self) -> dict:
        return {"isolation": self.method}


class SpawnLauncher(Launcher):
    """A fresh interpreter per job (required for CUDA)."""

    method = "spawn"

    def _start_and_wait(self, job: dict, stderr: Path, timeout_s: float, cap: float | None) -> ChildExit:
        job_file = stderr.with_name("job.json")  # this thread waits for the child: its PDEATHSIG is safe
        write_text(job_file, json.dumps({**job, "parent_pid": os.getpid()}), replace=True, what="job file")
        # NVML is device-wide, so the parent samples it: a polling thread in the measuring child would
        # compete for its GIL with the timed loop (launch-bound eager torch would pay for it)
        sampler = start_nvml(job.get("device", "cpu")) if job.get("type") == "measure" else None
        try:
            with open(stderr, "w") as err:
                proc = subprocess.Popen(guarded("hwprofile.measure._child", str(job_file)),
                                        stdin=subprocess.DEVNULL, stdout=err, stderr=err, process_group=0)
            exit = wait_child(proc.pid, timeout_s, cap)
        finally:
            delta = _stop_quietly(sampler)
        if delta is not None:
            exit["nvml_used_delta_mb"] = delta
        proc.returncode = exit["exitcode"] if exit["exitcode"] is not None else -(exit["signal"] or 1)
        return exit


def _stop_quietly(sampler) -> float | None:
    """The sampler's reading, or None if there is none or NVML failed (a lost GPU shows in the child)."""
    if sampler is None:
        return None
    try:
        return sampler.stop()
    except Exception:  # noqa: BLE001 - NVMLError and friends: no reading, the measurement stands
        return None


def server_env() -> dict:
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ForkServer(Launcher):
    """A preloaded server process that forks one child per job and reports its wait4 exit."""

    method = "forkserver"

    def __init__(self, preload: list[str]) -> None:
        super().__init__()
        self.preload = list(preload)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.ready: dict = {}

    def start(self) -> None:
        main = threading.current_thread() is threading.main_thread()  # PDEATHSIG follows the starting thread
        self._proc = subprocess.Popen(guarded("hwprofile.measure._forkserver", *self.preload, deathsig=main),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, env=server_env(), text=True)
        line = self._readline(300.0)
        if not line:
            self.close()
            raise EnvironmentProblem("the measurement fork server did not start (preloading failed)")
        self.ready = json.loads(line)

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        """The running server's stdin and stdout (``start`` opens both)."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise EnvironmentProblem("the measurement fork server is not running")
        return self._proc.stdin, self._proc.stdout

    def _readline(self, timeout_s: float) -> str | None:
        _, out = self._pipes()
        ready, _, _ = select.select([out], [], [], timeout_s)
        return out.readline() if ready else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ready_up(self) -> None:
        with self._lock:
            if not self.alive():
                self.start()

    def _start_and_wait(self, job: dict, stderr: Path, timeout_s: float, cap: float | None) -> ChildExit:
        with self._lock:
            if not self.alive():
                self.start()
            request = {"job": job, "stderr_path": str(stderr), "timeout_s": timeout_s, "mem_cap_mb": cap}
            server_in, _ = self._pipes()
            server_in.write(json.dumps(request) + "\n")
            server_in.flush()
            started = self._readline(60.0)
            pid = json.loads(started)["started"] if started else None
            line = self._readline(timeout_s + 60.0) if pid else None
            if not line:  # the server itself hung or died: kill its child's group, replace the server
                if pid:
                    _kill_group(pid)
                self.close()
                return ChildExit(pid=pid, exitcode=None, signal=None, maxrss_mb=0.0, cpu_s=None, killed="timeout",
                                 rss_seen_mb=0.0, wall_s=timeout_s)
            return cast(ChildExit, json.loads(line))  # the server wrote wait_child's ChildExit as JSON

    def info(self) -> dict:
        return {"isolation": self.method, "server_threads_at_fork": self.ready.get("threads"),
                "server_preloaded": self.ready.get("preloaded"), "server_import_s": self.ready.get("import_s")}

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.kill()  # its children ask for SIGKILL when it dies (hwprofile.lifetime)
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            self._proc = None


_LAUNCHERS: dict[str, Launcher] = {}


def cpu_preload() -> list[str]:
    """Runner classes whose libraries the fork server imports: the CPU runners available here."""
    return [runner_path(n) for n in RUNNER_NAMES if runner_class(n).available("cpu")[0]]


def get_launcher(device: str, isolation: str = "auto") -> Launcher:
    """The fork server for CPU jobs, spawned children for GPU jobs (or as asked)."""
    if isolation not in ("auto", "forkserver", "spawn"):
        raise ConfigError(f"isolation {isolation!r} is not one of: auto, forkserver, spawn")
    if device.startswith("cuda") and isolation == "forkserver":
        raise ConfigError("CUDA does not survive a fork: GPU measurements use isolation 'spawn'")
    method = "spawn" if isolation == "spawn" or device.startswith("cuda") else "forkserver"
    if method not in _LAUNCHERS:
        _LAUNCHERS[method] = SpawnLauncher() if method == "spawn" else ForkServer(cpu_preload())
    return _LAUNCHERS[method]


def shutdown() -> None:
    """Stop the fork server (also done at exit)."""
    for launcher in list(_LAUNCHERS.values()):
        if isinstance(launcher, ForkServer):
            launcher.close()
    _LAUNCHERS.clear()


import atexit  # noqa: E402

atexit.register(shutdown)
