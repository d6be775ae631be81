"""Child processes that die with their parent, and one SIGINT that ends hwprofile without a second traceback.

hwprofile measures in child processes: a fork server (same process group as hwprofile), the measuring
children it forks (each in a process group of its own, so a timeout can kill one with everything it
started), spawned GPU children, the peaks child and the TensorRT build child. When hwprofile itself is
killed (``kill -9``, ``timeout -s KILL``, a CI job's time limit), none of them may run on:

- :func:`die_with_parent` asks the Linux kernel to SIGKILL the calling process when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``), and exits at once if the parent is already gone (it died between the
  fork and the request). The kernel sends the signal when the *thread* that started the child exits,
  so it is used where that thread outlives the child (it waits for it) or is the main thread.
- The fork server also watches its parent's pid while it waits for a child (hwprofile.measure._forkserver)
  and reads EOF on its request pipe when the parent is gone.

:func:`interrupt_once` is the SIGINT handler of the ``hwprofile`` command: the first SIGINT raises
KeyboardInterrupt, later ones are ignored (``timeout -s INT`` signals the process and then its whole
group, so hwprofile receives two), so clean-up and the one-line message are never cut short.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: the environment variable that tells a started child (the fork server) its parent's pid
PARENT_ENV = "HWPROFILE_PARENT_PID"


def preamble(parent_pid: int, deathsig: bool = True) -> str:
    """Python source that, run first in a child started with ``python -c``, asks for SIGKILL on the parent's death
    (``deathsig``) and exits at once if ``parent_pid`` is no longer its parent: before any import, since importing
    hwprofile, torch or onnxruntime takes seconds on a loaded machine, during which a killed parent would leave
    the child running."""
    ask = ("try:\n    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)\nexcept Exception:\n    pass\n") if deathsig else ""
    return (f"import ctypes, os\n{ask}if os.getppid() != {int(parent_pid)}:\n    os._exit(137)\n"
            f"os.environ[{PARENT_ENV!r}] = '{int(parent_pid)}'\n")


def guarded(module: str, *args: str, deathsig: bool = True) -> list[str]:
    """The command that runs ``python -m module args...`` as a child of this process that dies with it
    (:func:`preamble` first, then the module as ``__main__``). ``deathsig``: only where the calling thread
    outlives the child (it waits for it) or is the main thread."""
    boot = preamble(os.getpid(), deathsig) + (
        "import runpy, sys\nsys.argv = [sys.argv[1], *sys.argv[2:]]\n"
        "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n")
    return [sys.executable, "-c", boot, module, *args]


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits; exit now if ``parent_pid`` (the pid
    the parent had when it started us) is no longer our parent. Returns whether the kernel took the request
    (False off Linux)."""
    taken = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            taken = libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
        except (OSError, AttributeError):
            taken = False
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(128 + int(sig))  # orphaned before the request: nobody waits for this process's work
    return taken


def parent_from_env() -> int | None:
    """The parent pid a starter put in :data:`PARENT_ENV` (removed, so this process's own children do not
    inherit a pid that is not theirs); None when absent or malformed."""
    text = os.environ.pop(PARENT_ENV, None)
    try:
        return int(text) if text else None
    except ValueError:
        return None


def interrupt_once(_signum=None, _frame=None) -> None:
    """SIGINT handler: ignore further SIGINTs, then raise KeyboardInterrupt once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt
