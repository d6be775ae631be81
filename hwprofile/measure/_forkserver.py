"""The fork server: ``python -m hwprofile.measure._forkserver RUNNER_PATH...``.

Imports the runners' libraries once (no computation), prints one JSON "ready" line, then for each
JSON request line on stdin forks a child that runs the job, answers ``{"started": pid}``, waits for
it (timeout, RSS cap, wait4) and answers its exit as one more JSON line. Library output is sent to stderr so stdout
carries only the protocol.

It dies with hwprofile (hwprofile.lifetime): it reads EOF on stdin when its parent is gone, watches its
parent's pid while it waits for a child (and then kills the child's group), and when started from
hwprofile's main thread has also asked the kernel for SIGKILL on the parent's death (lifetime.guarded,
before its imports). Each forked child asks the kernel for SIGKILL when the server dies.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from hwprofile.lifetime import die_with_parent, parent_from_env
from hwprofile.measure._child import execute
from hwprofile.measure._isolation import wait_child
from hwprofile.runners import load_path


def _preload(paths: list[str]) -> list[str]:
    done = []
    for path in paths:
        load_path(path).preload()
        done.append(path)
    return done


def _child(request: dict, server: int) -> None:
    """In the forked child: dies with the server, new process group, stdio to the job's stderr file, run, exit."""
    code = 0
    try:
        die_with_parent(server)
        os.setpgid(0, 0)
        fd = os.open(request["stderr_path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        execute(request["job"])
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(paths: list[str]) -> None:
    parent = parent_from_env()  # started by lifetime.guarded: the death signal, if any, is already asked for
    if parent is not None and os.getppid() != parent:
        return  # hwprofile is already gone
    parent = os.getppid()

    def orphaned() -> bool:
        return os.getppid() != parent

    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    start = time.perf_counter()
    preloaded = _preload(paths)
    proto.write(json.dumps({"ready": True, "pid": os.getpid(), "preloaded": preloaded,
                            "import_s": round(time.perf_counter() - start, 3),
                            "threads": len(os.listdir("/proc/self/task"))}) + "\n")
    server = os.getpid()
    for line in sys.stdin:  # EOF: hwprofile closed the pipe or is gone
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            proto.close()
            _child(request, server)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        proto.write(json.dumps({"started": pid}) + "\n")
        exit = wait_child(pid, request["timeout_s"], request.get("mem_cap_mb"), stop_if=orphaned)
        if orphaned():
            return  # the child's group is killed and reaped; nobody reads the answer
        proto.write(json.dumps(exit) + "\n")


if __name__ == "__main__":
    serve(sys.argv[1:])
