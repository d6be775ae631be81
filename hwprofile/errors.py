"""Exception families: user errors (exit 2), environment errors (exit 3), internal bugs.

User-facing commands catch :class:`HwprofileError` and print its message on one line with
``exit_code``; anything else is a bug in hwprofile and is reported as such.
"""

from __future__ import annotations

from typing import Any


class HwprofileError(Exception):
    """Base of every error hwprofile expects a user to see; never shown with a traceback."""

    exit_code = 2


class ConfigError(HwprofileError):
    """Invalid arguments, options or combinations of them."""


class UnknownModelError(ConfigError):
    """A model name that is not in the zoo (the message suggests close names)."""


class StrategyError(ConfigError):
    """An unknown or malformed scaling strategy, or an invalid scale factor."""


class InputFileError(ConfigError):
    """A file that is missing, unreadable, corrupt or of the wrong kind."""


class SchemaError(InputFileError):
    """A profile whose JSON does not follow a schema version this hwprofile understands."""


class EnvironmentProblem(HwprofileError):
    """The device, a runner or a library is unavailable on this machine (exit 3)."""

    exit_code = 3


class RunnerUnavailable(EnvironmentProblem):
    """A runner exists but cannot run here; the message says why and what is available."""


class DeviceUnavailable(EnvironmentProblem):
    """The requested device does not exist on this machine."""


class MeasurementError(EnvironmentProblem):
    """A measurement could not be taken (e.g. every configuration of a sweep failed)."""

    #: an export whose verification failed: its artifact, for callers that report rather than stop
    artifact: Any = None


class InternalError(Exception):
    """A bug in hwprofile: deliberately *not* a HwprofileError."""


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt (SIGINT, or SIGTERM during a sweep) that knows which profile holds the work so far:
    ``path`` (None when nothing was saved yet)."""

    def __init__(self, path=None) -> None:
        super().__init__()
        self.path = path


def clip(text: str, limit: int = 40) -> str:
    """``text`` for a one-line message: at most ``limit`` characters, cut with "..." (the one shortener)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
