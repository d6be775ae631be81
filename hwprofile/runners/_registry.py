"""Runner registry: ``backend:provider`` names, availability, lazy loading, device resolution.

Importing this package imports no heavy library; a runner's module is imported when asked for,
and its own imports of torch/onnxruntime/tensorrt happen when it loads a workload.
"""

from __future__ import annotations

import importlib

from hwprofile import env
from hwprofile.errors import ConfigError, DeviceUnavailable, RunnerUnavailable
from hwprofile.runners._base import Runner, Unsupported

__all__ = ["RUNNER_NAMES", "Runner", "Unsupported", "availability", "available_runners", "check_runner_name",
           "get_runner", "register_plugin", "register_runner", "resolve_device", "runner_class", "runner_names"]

RUNNER_NAMES = ("torch:cpu", "torch:cuda", "ort:cpu", "ort:cuda", "ort:tensorrt", "trt")

_PATHS = {
    "torch:cpu": "hwprofile.runners._torch:TorchCpuRunner",
    "torch:cuda": "hwprofile.runners._torch:TorchCudaRunner",
    "ort:cpu": "hwprofile.runners._ort:OrtCpuRunner",
    "ort:cuda": "hwprofile.runners._ort_gpu:OrtCudaRunner",
    "ort:tensorrt": "hwprofile.runners._ort_gpu:OrtTensorrtRunner",
    "trt": "hwprofile.runners._trt:TrtRunner",
}
_EXTRA: dict[str, str] = {}  # register_runner(): test or plugin runners, never listed in RUNNER_NAMES


def runner_names() -> tuple[str, ...]:
    return RUNNER_NAMES


def register_runner(name: str, path: str) -> None:
    """Register an extra runner ``"module:Class"`` under ``name`` (tests, plugins)."""
    if name in _PATHS:
        raise ConfigError(f"runner {name!r} is built in and cannot be replaced")
    _EXTRA[name] = path


def unregister_runner(name: str) -> None:
    _EXTRA.pop(name, None)


def register_plugin(text: str) -> str:
    """Register a plugin runner given as ``NAME=MODULE:CLASS`` (``run --runner-plugin``); returns NAME.

    The class is imported now, so a wrong path is a ConfigError naming what was expected; it must be a
    :class:`Runner` subclass. Registering the same name with the same path again is a no-op.
    """
    name, eq, path = str(text).partition("=")
    name, path = name.strip().lower(), path.strip()
    module, colon, attr = path.partition(":")
    if not eq or not name or not colon or not module or not attr:
        raise ConfigError(f"runner plugin {text!r}: expected NAME=MODULE:CLASS, e.g. "
                          "sleep=my_runners:SleepRunner")
    try:
        cls = load_path(path)
    except ImportError as exc:
        raise ConfigError(f"runner plugin {text!r}: cannot import module {module!r} ({type(exc).__name__}: "
                          f"{exc}); is it on PYTHONPATH?") from None
    except AttributeError:
        raise ConfigError(f"runner plugin {text!r}: module {module!r} has no class {attr!r}") from None
    if not (isinstance(cls, type) and issubclass(cls, Runner)):
        raise ConfigError(f"runner plugin {text!r}: {path} is not a subclass of hwprofile.runners.Runner")
    if _EXTRA.get(name) not in (None, path):
        raise ConfigError(f"runner plugin {text!r}: {name!r} is already registered as {_EXTRA[name]}")
    register_runner(name, path)
    return name


def registered_runners() -> dict[str, str]:
    """The extra runners registered in this process, ``{name: "module:Class"}`` (a copy, e.g. to send to a
    Ray node so it can load them too)."""
    return dict(_EXTRA)


def check_runner_name(name: str) -> str:
    """The canonical runner name; an unknown one is a ConfigError listing the valid names."""
    text = str(name).strip().lower()
    if text in _PATHS or text in _EXTRA:
        return text
    raise ConfigError(f"unknown runner {name!r}; expected one of: {', '.join(RUNNER_NAMES)}")


def runner_path(name: str) -> str:
    name = check_runner_name(name)
    return _EXTRA.get(name) or _PATHS[name]


def load_path(path: str) -> type[Runner]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def runner_class(name: str) -> type[Runner]:
    """The runner class, imported without checking availability (its module is cheap)."""
    return load_path(runner_path(name))


def _parse(device: str) -> tuple[str, int | None]:
    try:
        return env.parse_device(device)
    except ValueError:
        raise ConfigError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from None


def availability(name: str, device: str = "cpu") -> tuple[bool, str]:
    """(ok, reason) of runner ``name`` on ``device``, e.g. "ort:cuda - onnxruntime-gpu is not installed"."""
    cls = runner_class(name)
    if str(device).strip().lower() == "auto":
        device = resolve_device("auto")
    _parse(device)
    return cls.available(device)


def available_runners(device: str) -> list[str]:
    """Built-in runners usable on ``device`` ("cpu" or "cuda:N")."""
    return [n for n in RUNNER_NAMES if availability(n, device)[0]]


def _devices() -> list[str]:
    return ["cpu"] + [f"cuda:{i}" for i in range(env.gpu_count())]


def _natural_device(cls: type[Runner]) -> str:
    return "cpu" if cls.device_type == "cpu" else "cuda:0"


def get_runner(name: str) -> type[Runner]:
    """The runner class; RunnerUnavailable (exit 3) naming what is available when it cannot run here."""
    cls = runner_class(name)
    ok, reason = cls.available(_natural_device(cls))
    if not ok:
        usable = sorted({n for d in _devices() for n in available_runners(d)}, key=RUNNER_NAMES.index)
        raise RunnerUnavailable(f"runner {unavailable_text(reason)}; available here: {', '.join(usable) or 'none'}")
    return cls


def unavailable_text(reason: str) -> str:
    """"ort:cuda - why" -> "ort:cuda is unavailable: why"."""
    name, _, why = reason.partition(" - ")
    return f"{name} is unavailable: {why}"


def resolve_device(device: str) -> str:
    """"auto" | "cpu" | "cuda" | "cuda:N" -> a concrete device of this machine."""
    text = str(device).strip().lower()
    count = env.gpu_count()
    if text == "auto":
        return "cuda:0" if count else "cpu"
    kind, index = _parse(text)
    if kind == "cpu":
        return "cpu"
    if index is None or index >= count:
        seen = f"{count} CUDA GPU(s) visible" if count else "no CUDA GPU is visible"
        raise DeviceUnavailable(f"device {text} is not available: {seen}; available devices: "
                                f"{', '.join(_devices())}")
    return f"cuda:{index}"
