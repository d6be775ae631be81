"""The one way hwprofile writes a file: atomically, inside the target folder, never through a symlink.

Every write goes to a temporary file created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``) next to
the target, named ``.NAME.<pid>-<random>.tmp``; it is flushed and fsync'ed, then renamed onto the
target. An existing target is never replaced unless the caller passes ``replace=True`` (the CLI's
``--force``, or a file the same command owns, such as a sweep's own profile); without it the rename is
a hard link that fails if the target appeared meanwhile. A failed write removes its temporary file,
and temporaries left by killed writers (their process is gone, or they are older than an hour) are
removed on the next write to the same target. A symlink at the target is refused, never followed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from hwprofile.errors import ConfigError, EnvironmentProblem, HwprofileError, InputFileError, InternalError

STALE_AGE_S = 3600.0
_TMP = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[A-Za-z0-9_]+\.tmp$")


class TargetExists(ConfigError):
    """The output file exists and the user did not ask to replace it."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def clean_stale(path: Path) -> list[Path]:
    """Remove temporaries of ``path`` left by killed writers; returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TMP.match(entry.name)
        if not m or m.group("name") != path.name:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        pid = int(m.group("pid")) if m.group("pid") else None
        dead = pid is not None and pid != os.getpid() and not _pid_alive(pid)
        if dead or now - st.st_mtime > STALE_AGE_S:
            try:
                os.unlink(entry.path)  # a symlink is removed itself, never its target
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


#: errors of the machine rather than of the path the user chose: a full disk or quota, an I/O error, a file
#: over the size limit (RLIMIT_FSIZE). They are exit 3; a folder that does not exist or may not be written is 2.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def write_error(exc: OSError, path: str | os.PathLike, what: str = "file") -> HwprofileError:
    """The one-line error for ``exc`` raised while writing ``path``: an EnvironmentProblem (exit 3) for a full
    disk and its kin (:data:`ENVIRONMENT_ERRNOS`), else an InputFileError (exit 2)."""
    text = f"cannot write {what} {str(path)!r}: {exc.strerror or exc}"
    if exc.errno in ENVIRONMENT_ERRNOS:
        return EnvironmentProblem(text)
    return InputFileError(text)


def make_folder(folder: str | os.PathLike, what: str = "folder") -> Path:
    """``folder`` and its parents, created if missing; a folder that cannot be made is one line (exit 2 or 3)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputFileError(f"cannot use {what} {str(folder)!r}: it exists and is not a folder") from None
    except OSError as exc:
        raise write_error(exc, folder, what) from None
    if not folder.is_dir():
        raise InputFileError(f"cannot use {what} {str(folder)!r}: it exists and is not a folder")
    return folder


#: bytes written (and synced) by :func:`check_writable`'s probe: a full file system refuses them
PROBE_BYTES = 4096


def check_writable(path: str | os.PathLike, what: str = "file") -> None:
    """Fail before any work if ``path`` cannot be written: its folder is made (if missing) and a temporary file
    is created in it, :data:`PROBE_BYTES` are written to it and synced (a full disk fails here, before minutes of
    measuring, rather than at the end), and it is removed."""
    path = Path(path)
    parent = make_folder(path.parent if str(path.parent) else Path("."), f"the folder of {what} {str(path)!r}")
    probe = parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise write_error(exc, path, what) from None
    try:
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise write_error(exc, path, what) from None
    finally:
        probe.unlink(missing_ok=True)


def write(path: str | os.PathLike, fill: Callable[[IO[bytes]], object], *, replace: bool = False,
          what: str = "file") -> Path:
    """Create ``path`` with what ``fill(fh)`` writes to a binary file handle; see the module docstring.

    Raises :class:`TargetExists` (exit 2) if ``path`` exists and ``replace`` is false, and
    :class:`InputFileError` (exit 2) for a folder that cannot be written; ``fill``'s own errors propagate
    after the temporary file is removed.
    """
    path = Path(path)
    if path.is_symlink():
        raise InputFileError(f"refusing to write {what} {str(path)!r}: it is a symbolic link")
    if path.exists() and (not replace or not path.is_file()):
        if not path.is_file():
            raise InputFileError(f"cannot write {what} {str(path)!r}: it exists and is not a regular file")
        raise TargetExists(f"{what} {str(path)!r} exists; pass --force to replace it")
    make_folder(path.parent, f"the folder of {what} {str(path)!r}")
    clean_stale(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
            os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise write_error(exc, path, what) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _commit(tmp, path, replace, what)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, path, what) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _commit(tmp: Path, path: Path, replace: bool, what: str) -> None:
    if replace:
        if path.is_symlink():
            raise InputFileError(f"refusing to write {what} {str(path)!r}: it is a symbolic link")
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path, follow_symlinks=False)  # fails if the target appeared meanwhile
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise TargetExists(f"{what} {str(path)!r} exists; pass --force to replace it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then rename
            tmp.unlink(missing_ok=True)
            raise TargetExists(f"{what} {str(path)!r} exists; pass --force to replace it") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes, *, replace: bool = False, what: str = "file") -> Path:
    return write(path, lambda fh: fh.write(data), replace=replace, what=what)


def write_text(path: str | os.PathLike, text: str, *, replace: bool = False, what: str = "file") -> Path:
    return write_bytes(path, text.encode("utf-8"), replace=replace, what=what)


def write_json(path: str | os.PathLike, data: Any, *, replace: bool = False, what: str = "file") -> Path:
    """Standard JSON only: NaN or Infinity anywhere is an error, never written."""
    try:
        text = json.dumps(data, indent=1, allow_nan=False)
    except ValueError as exc:
        raise InternalError(f"refusing to write non-standard JSON to {str(path)!r}: {exc}") from None
    return write_text(path, text, replace=replace, what=what)


def copy_file(src: str | os.PathLike, dest: str | os.PathLike, *, replace: bool = False,
              what: str = "file") -> Path:
    """Copy ``src`` (a regular file, not a link) to ``dest`` through the atomic writer."""
    src = Path(src)
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise InputFileError(f"cannot read {str(src)!r}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fin:
        return write(dest, lambda fh: shutil.copyfileobj(fin, fh, 1 << 20), replace=replace, what=what)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: str, max_len: int = 120) -> str:
    """A file name made from data (a device id, a runner): one path component, no leading dot, bounded."""
    name = _UNSAFE.sub("_", str(text)).strip("._") or "unnamed"
    return name[:max_len]


def inside(folder: str | os.PathLike, name: str) -> Path:
    """``folder / safe_name(name)``, checked to stay directly inside ``folder``."""
    folder = Path(folder)
    path = folder / safe_name(name)
    if path.parent != folder or path.name in ("", ".", ".."):
        raise InputFileError(f"refusing file name {name!r}: it would leave {str(folder)!r}")
    return path
