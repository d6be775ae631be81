"""An advisory lock per profile: one sweep at a time writes a profile file.

A sweep saves its profile after every record (hwprofile.atomic: a new file renamed onto the old one), so the
lock cannot live on the profile's own inode. It is an exclusive ``flock`` on a companion file beside it,
``.NAME.lock``, which holds the owner's pid for the message a second sweep prints. The kernel drops the lock
when its owner exits, however it exits; the owner removes the file when it is done (a killed owner leaves the
file, unlocked, and the next sweep takes it over). Locking the same profile again in the same process (a fleet
sweep resuming its own file per device kind) nests.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hwprofile.atomic import make_folder, write_error
from hwprofile.errors import EnvironmentProblem

_HELD: dict[str, int] = {}  # lock file (real path) -> nesting depth, in this process


class ProfileBusy(EnvironmentProblem):
    """Another hwprofile process is writing the profile (exit 3: wait for it, or choose another file)."""


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


@contextmanager
def profile_lock(path: str | os.PathLike, what: str = "profile") -> Iterator[None]:
    """Hold the advisory lock of profile ``path``; :class:`ProfileBusy` (one line, exit 3) if another process
    holds it."""
    path = Path(path)
    make_folder(path.parent if str(path.parent) else Path("."), f"the folder of {what} {str(path)!r}")
    lock = lock_path(path)
    key = os.path.realpath(lock)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    fd = _acquire(lock, path, what)
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        try:
            os.unlink(lock)  # while still holding it: a waiter that opened the old file sees it is gone
        except OSError:
            pass
        os.close(fd)


def _acquire(lock: Path, path: Path, what: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        try:
            fd = os.open(lock, flags, 0o644)
        except OSError as exc:  # a symbolic link at the lock's name is refused (O_NOFOLLOW), never followed
            raise write_error(exc, lock, f"the lock of {what} {str(path)!r}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(fd)
            os.close(fd)
            raise ProfileBusy(f"{what} {str(path)!r} is being written by another hwprofile{who}; two sweeps must "
                              "not write one profile: wait for it to finish, or choose another --out") from None
        except OSError as exc:  # a file system without flock
            os.close(fd)
            raise write_error(exc, lock, f"the lock of {what} {str(path)!r}") from None
        try:
            same = os.stat(lock, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
            except OSError:
                pass  # the pid is for the message only
            return fd
        os.close(fd)  # its owner removed it between our open and our lock: take the new one
    raise EnvironmentProblem(f"could not lock {what} {str(path)!r}: its lock file keeps changing")
