"""The runner lifecycle: ``load(workload)`` -> ``infer()`` (one timed unit) ... -> ``close()``.

A runner module must stay cheap to import: torch, onnxruntime and tensorrt are imported inside
methods. ``available()`` says whether (and why not) the runner can run here without importing them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from hwprofile import env
from hwprofile.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from hwprofile.profile import Workload


class Unsupported(Exception):
    """This runner cannot run this workload (recorded as status ``unsupported``)."""


# ------------------------------------------------------------------ what a settings field means
#: A settings field that changes what is measured: a difference on one device refuses a comparison.
RESULT = "result"
#: A reading taken during the run (load on the machine, where nodes ran...): a difference warns.
OBSERVATION = "observation"
#: How, when and where the run went (warm-up counts, seconds, the node of a fleet): never compared.
BOOKKEEPING = "bookkeeping"
EFFECTS = (RESULT, OBSERVATION, BOOKKEEPING)

#: Fields every measurement writes, whatever the runner (hwprofile.measure._core, the executors,
#: hwprofile.profile._quality); the word after a result field is the kind a refusal names.
COMMON_RESULT_SETTINGS: Mapping[str, str] = {
    "threads": "thread setting", "options.threads": "thread setting", "resolution": "input size",
}
COMMON_OBSERVED_SETTINGS: tuple[str, ...] = (
    "foreign_cpu_cores",  # CPU cores other processes kept busy, per process (measure.core)
    "system_check", "gpu_watch", "quality_attempts",  # the machine around the run (hwprofile.profile._quality)
    "gpu_clocks",  # NVML's below-clocks shares over the timed window (hwprofile.trackers.clocks)
    "timing",  # the timing protocol asked for (budget, iterations, noise threshold)
    "isolation",  # forkserver or spawn children
    "executor", "ray_retried_after",  # local or ray, and a Ray retry after a node fault
    "device",  # cuda:0 vs cuda:1 on one device type
)
COMMON_BOOKKEEPING_SETTINGS: tuple[str, ...] = (
    "runner", "model", "batch", "precision", "mode",  # the join key: equal on both sides by construction
    "timing.repeats",  # how many processes: the intervals account for it
    "warmup_iters", "warmup_s", "timed_s", "stop_reasons", "load_s", "child_threads",  # per process
    "server_threads_at_fork", "server_preloaded", "server_import_s",  # the fork server's state
    "node", "node_address", "node_hostname",  # which machine of a fleet (hwprofile.sweep._executor)
    "options.seed",  # the random input's seed: values, never shapes or types
)


class Runner:
    """Base class: subclasses set the class attributes and implement load/infer/close."""

    name: ClassVar[str] = ""
    device_type: ClassVar[str] = "cpu"  # "cpu" | "cuda"
    timing_method: str = "perf_counter_ns"  # per instance where a runner picks its clock at load (ort:cuda)
    modes: ClassVar[tuple[str, ...]] = ("infer",)
    kinds: ClassVar[tuple[str, ...]] = ()  # workload kinds accepted: spec | onnx | engine
    #: The input this runner runs, made from a sweep item by
    #: :func:`hwprofile.runners.prepare_input`: ``module`` (a torch
    #: module built from a spec), ``onnx`` (a verified ONNX graph) or ``engine`` (a TensorRT engine).
    input: ClassVar[str] = "onnx"
    #: Rough seconds to load that input in the measuring child, for ``run --plan`` (None: the input's default).
    load_estimate_s: ClassVar[float | None] = None
    option_names: ClassVar[tuple[str, ...]] = ("threads",)

    # -- what each settings field means for a comparison (docs/comparability.md) -------------
    #: Settings that change results, each with the kind a refusal names ("thread setting", "precision",
    #: "provider", "backend version", "setting"...). A dotted name covers a nested field (``options.threads``);
    #: a field is judged by its longest declared prefix.
    result_settings: ClassVar[Mapping[str, str]] = COMMON_RESULT_SETTINGS
    #: Observations: readings of the machine or the run that may explain a difference (a difference warns).
    observed_settings: ClassVar[tuple[str, ...]] = COMMON_OBSERVED_SETTINGS
    #: Bookkeeping: how, when and where the run went; never compared.
    bookkeeping_settings: ClassVar[tuple[str, ...]] = COMMON_BOOKKEEPING_SETTINGS
    #: Device-fingerprint fields whose difference changes this runner's results (library versions, CUDA,
    #: driver); ``libraries.X`` also covers ``versions.X`` (hand-written fingerprints).
    result_fingerprint: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: str | None = None) -> None:
        self.device = device or ("cpu" if self.device_type == "cpu" else "cuda:0")
        self.workload: Workload | None = None

    # -- what can run where -------------------------------------------------------------
    @classmethod
    def available(cls, device: str = "cpu") -> tuple[bool, str]:
        """(ok, reason): e.g. (False, "ort:cuda - onnxruntime-gpu is not installed")."""
        try:
            kind, index = env.parse_device(device)
        except ValueError:
            return False, f"{cls.name} - unknown device {device!r} (expected cpu or cuda:N)"
        if kind != cls.device_type:
            return False, f"{cls.name} - runs on {cls.device_type} devices, not {device}"
        missing = cls.missing(index)
        return (missing is None), f"{cls.name} - {missing or cls.version_text()}"

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        """Why this runner cannot run on device ``index`` here, or None."""
        return None

    @classmethod
    def version_text(cls) -> str:
        return "ready"

    @classmethod
    def unsupported_reason(cls, workload: Workload) -> str | None:
        """Why this runner cannot run ``workload`` (status unsupported), or None."""
        if workload.mode not in cls.modes:
            return f"{cls.name} does not support mode {workload.mode!r} (supports: {', '.join(cls.modes)})"
        if cls.kinds and workload.kind not in cls.kinds:
            need = " or ".join(cls.kinds)
            return f"{cls.name} runs {need} workloads, not {workload.kind!r}"
        return None

    @classmethod
    def declarations(cls) -> dict[str, tuple[str, str]]:
        """Every declared settings field: name -> (effect, kind). A field declared twice is a bug (ValueError)."""
        out: dict[str, tuple[str, str]] = {}
        groups = ((RESULT, cls.result_settings.items()),
                  (OBSERVATION, ((f, "setting") for f in cls.observed_settings)),
                  (BOOKKEEPING, ((f, "setting") for f in cls.bookkeeping_settings)))
        for effect, fields in groups:
            for name, kind in fields:
                if name in out:
                    raise ValueError(f"{cls.name}: settings field {name!r} is declared twice "
                                     f"({out[name][0]} and {effect})")
                out[name] = (effect, kind)
        return out

    @classmethod
    def declared(cls, field: str) -> tuple[str, str] | None:
        """(effect, kind) of a settings field (dotted for nested fields) by its longest declared prefix;
        None when undeclared (written by a newer hwprofile or a plugin)."""
        return longest_prefix(cls.declarations(), field)

    @classmethod
    def takes_onnx_files(cls) -> bool:
        """Whether a user's .onnx file can be made into this runner's input (a torch module cannot)."""
        return cls.input != "module"


    @classmethod
    def preload(cls) -> None:
        """Import the heavy libraries this runner needs (no computation, no thread pools)."""

    # -- lifecycle ----------------------------------------------------------------------
    def load(self, workload: Workload) -> None:
        raise NotImplementedError

    @property
    def loaded(self) -> Workload:
        """The workload :meth:`load` took (asking before ``load`` is a bug)."""
        if self.workload is None:
            raise RuntimeError(f"{self.name}: no workload is loaded")
        return self.workload

    def loaded_path(self) -> str:
        """The file of the loaded ONNX or engine workload."""
        if self.loaded.path is None:
            raise RuntimeError(f"{self.name}: the loaded {self.loaded.kind} workload has no file")
        return self.loaded.path

    def infer(self) -> None:
        """Run (on GPU: enqueue) one unit of work: a batch forward, or forward+backward."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on CPU)."""

    def time_once(self) -> float:
        """One timed unit in milliseconds (perf_counter_ns on CPU; CUDA runners use events)."""
        start = time.perf_counter_ns()
        self.infer()
        return (time.perf_counter_ns() - start) / 1e6

    def reset_peak_memory(self) -> None:
        """Reset the runner's own peak-memory counters before the measured phase."""

    def memory(self) -> dict[str, dict]:
        """Runner-specific memory numbers: name -> {"value_mb", "definition"}."""
        return {}

    def settings(self) -> dict[str, Any]:
        """What actually ran: threads, providers, session options..."""
        return {}

    def close(self) -> None:
        """Release everything; safe to call twice."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What the shared option names take (runner-specific test options are not listed, not checked).
OPTION_KINDS = {"threads": "an integer >= 1", "seed": "an integer", "trt_cache_dir": "a folder path",
                **{k: "true or false" for k in ("iobinding", "cpu_mem_arena", "mem_pattern", "channels_last",
                                                "compile", "cuda_graphs")}}


def _valid(kind: str, value) -> bool:
    if kind == "an integer >= 1":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "true or false":
        return isinstance(value, bool) or value in (0, 1)
    return isinstance(value, str) and bool(value)


def check_options(cls: type[Runner], options: dict) -> None:
    """Unknown option names, and values of the wrong kind, are user errors saying what is expected."""
    unknown = sorted(set(options) - set(cls.option_names))
    if unknown:
        raise ConfigError(f"{cls.name}: unknown option(s) {', '.join(unknown)}; "
                          f"expected: {', '.join(cls.option_names)}")
    for name, value in options.items():
        kind = OPTION_KINDS.get(name)
        if kind and not _valid(kind, value):
            raise ConfigError(f"{cls.name}: option {name}={value!r}: expected {kind}")


def cuda_event_ms(stream, events, infer) -> float:
    """Milliseconds of one ``infer()`` between two CUDA events recorded on ``stream``."""
    start, end = events
    start.record(stream)
    infer()
    end.record(stream)
    end.synchronize()
    return start.elapsed_time(end)


def longest_prefix(table: dict[str, tuple[str, str]], field: str) -> tuple[str, str] | None:
    """The entry of ``table`` for dotted ``field`` or its longest declared prefix (``a.b.c``, ``a.b``, ``a``)."""
    parts = field.split(".")
    for n in range(len(parts), 0, -1):
        hit = table.get(".".join(parts[:n]))
        if hit is not None:
            return hit
    return None
