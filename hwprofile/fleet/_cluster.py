"""Reaching a Ray cluster and reading its nodes: connecting (one-line errors for a missing Ray, an
unreachable address or a missing token), one probe task per alive node, and the device kinds
(nodes whose fingerprints give one device id, split by ``hwprofile:LABEL`` resources) that
:mod:`hwprofile.fleet._ray` schedules measurements on."""

from __future__ import annotations

import importlib
import os
import platform
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import exporters
from hwprofile import env, runners
from hwprofile._lazy import extra_hint, heavy
from hwprofile.errors import EnvironmentProblem, HwprofileError
from hwprofile.measure import fingerprint
from hwprofile.runners import availability, available_runners, runner_class

LABEL_PREFIX = "hwprofile:"
#: seconds the driver waits beyond the measurement's own timeouts (queueing, fork-server start)
GRACE_S = 300.0


# ------------------------------------------------------------------------------ connecting

def import_ray():
    try:
        ray = heavy("ray")
    except ImportError:
        raise EnvironmentProblem(f"--executor ray needs Ray: {extra_hint('ray')}") from None
    return ray


def _runtime_env() -> dict:
    """hwprofile, exporters and the plugin runners registered now travel with every task (Ray ``py_modules``)."""
    return {"py_modules": [str(Path(__file__).resolve().parents[1]), str(Path(exporters.__file__).parent),
                           *plugin_modules()]}


def plugin_modules() -> list[str]:
    """The top-level package folder (or single ``.py`` file) of each registered plugin runner outside hwprofile
    and exporters, so that the nodes import the driver's version of it."""
    out: list[str] = []
    for path in runners.registered_runners().values():
        top = path.partition(":")[0].split(".")[0]
        if top in ("hwprofile", "exporters"):
            continue
        module = importlib.import_module(top)
        where = (list(getattr(module, "__path__", None) or []) or [module.__file__])[0]
        if where and where not in out:
            out.append(str(where))
    return out


@contextmanager
def node_environment() -> Iterator[None]:
    """Inside a Ray task: the environment a local run on this node would have.

    Ray sets ``OMP_NUM_THREADS`` to the CPUs a task asked for when the worker's own environment does not
    set it (``ray._private.utils.set_omp_num_threads_if_unset``). torch takes its default thread count from it,
    so a GPU task (one CPU) would measure with 1 thread and a CPU task with the node's logical CPUs, where a
    local run uses the physical cores: ``threads``, a result setting, would differ and local and Ray records
    would refuse to compare. The variable is removed for the task when the worker did not start with it.
    """
    value = os.environ.get("OMP_NUM_THREADS")
    set_by_ray = value is not None and not _in_start_environment("OMP_NUM_THREADS", value)
    if set_by_ray:
        del os.environ["OMP_NUM_THREADS"]
    try:
        yield
    finally:
        if set_by_ray and value is not None:
            os.environ["OMP_NUM_THREADS"] = value


def _in_start_environment(name: str, value: str) -> bool:
    """Whether this process started with ``name=value`` (Linux: /proc/self/environ). Elsewhere: whether the
    value differs from what Ray would have set (floor of the task's CPUs, at least 1)."""
    try:
        start = Path("/proc/self/environ").read_bytes().split(b"\0")
    except OSError:
        cpus = heavy("ray").get_runtime_context().get_assigned_resources().get("CPU") or 1
        return value != str(max(int(cpus), 1))
    return f"{name}={value}".encode() in start


def _connect_error(address: str | None, exc: BaseException, stderr: str = "") -> EnvironmentProblem:
    text = " ".join(str(exc).split())
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    if "AuthenticationError" in type(exc).__name__ or "InvalidAuthToken" in text + stderr:
        return EnvironmentProblem(f"{where} requires its authentication token: export RAY_AUTH_MODE=token and the "
                                  "token in RAY_AUTH_TOKEN or ~/.ray/auth_token (ray get-auth-token on the head "
                                  "prints it), or run on the head node with --ray-address auto")
    return EnvironmentProblem(f"cannot reach {where}: {type(exc).__name__}: {text[:240]}")


def connect(address: str | None = None) -> bool:
    """Connect this process to Ray (a new local instance without ``address``); True if we started it.

    An already-initialised Ray (e.g. a test's cluster) is reused as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    _check_reachable(address)
    kwargs: dict = {"runtime_env": _runtime_env(), "log_to_driver": False, "logging_level": "ERROR"}
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(address="local", include_dashboard=False)
    with _captured_stderr() as captured:
        try:
            ray.init(**kwargs)
            failure = None
        except Exception as exc:  # ConnectionError, AuthenticationError, RuntimeError, ...
            failure = exc
    if failure is not None:
        try:
            ray.shutdown()
        except Exception:
            pass
        raise _connect_error(address, failure, captured.text) from None
    if captured.text.strip():
        sys.stderr.write(captured.text)
    return True


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast (Ray retries for minutes) when nothing listens at an explicit HOST:PORT."""
    text = address or ""
    host, sep, port = text.rpartition(":")
    if not sep or "://" in text or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise EnvironmentProblem(f"cannot reach the Ray cluster at {address}: nothing answers there "
                                 f"({exc.strerror or type(exc).__name__}); start it with ray start --head "
                                 "(docs/fleet.md)") from None


class _Captured:
    text = ""


@contextmanager
def _captured_stderr() -> Iterator[_Captured]:
    """File descriptor 2 into a temp file: Ray's C++ core logs every failed connection attempt there."""
    out = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.text = tmp.read().decode(errors="replace")


# ------------------------------------------------------------------------------ node probes

def register_runners(extra_runners: dict) -> None:
    for name, path in extra_runners.items():
        if name not in runners.RUNNER_NAMES:
            runners.register_runner(name, path)


def _probe_node(extra_runners: dict, with_gpu: bool) -> dict:
    """On a node: its CPU (and first visible GPU's) fingerprint and the runners it offers."""
    ray = heavy("ray")

    register_runners(extra_runners)
    out = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": platform.node(),
           "cpu": fingerprint("cpu"), "cpu_runners": available_runners("cpu") + _extra_ok(extra_runners, "cpu")}
    if with_gpu:
        if env.gpu_count():
            out["gpu"] = fingerprint("cuda:0")
            out["gpu_runners"] = available_runners("cuda:0") + _extra_ok(extra_runners, "cuda:0")
    return out


def _extra_ok(extra_runners: dict, device: str) -> list[str]:
    kind = "cpu" if device == "cpu" else "cuda"
    return [n for n in extra_runners if runner_class(n).device_type == kind and availability(n, device)[0]]


@dataclass
class Node:
    node_id: str
    address: str
    hostname: str
    resources: dict
    port: int | None = None  # the node's raylet (NodeManagerPort): answers while the node lives

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0))

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0))

    @property
    def label(self) -> str | None:
        labels = sorted(k[len(LABEL_PREFIX):] for k in self.resources if k.startswith(LABEL_PREFIX))
        return labels[0] if labels else None

    @property
    def accelerators(self) -> list[str]:
        return sorted(k.partition(":")[2] for k in self.resources if k.startswith("accelerator_type:"))


@dataclass
class DeviceKind:
    """Nodes whose device has the same fingerprint id (and ``hwprofile:`` label)."""

    id: str
    device_type: str  # "cpu" | "cuda"
    fingerprint: dict  # measured on nodes[0]
    nodes: list[Node] = field(default_factory=list)
    runners: list[str] = field(default_factory=list)  # offered by every node of the kind

    @property
    def device(self) -> str:
        return "cpu" if self.device_type == "cpu" else "cuda:0"

    def summary(self) -> dict:
        return {"kind": self.id, "device": self.device_type, "nodes": len(self.nodes),
                "addresses": [n.address for n in self.nodes], "node_ids": [n.node_id for n in self.nodes],
                "accelerators": sorted({a for n in self.nodes for a in n.accelerators}),
                "runners": list(self.runners)}


def alive_nodes() -> list[Node]:
    ray = import_ray()
    return [Node(n["NodeID"], n.get("NodeManagerAddress", ""), n.get("NodeManagerHostname", ""),
                 dict(n.get("Resources") or {}), n.get("NodeManagerPort")) for n in ray.nodes() if n.get("Alive")]


def answers(host: str, port: int | None, timeout_s: float = 1.0) -> bool:
    """Whether something accepts a TCP connection at host:port (a raylet or the GCS); True when unknown."""
    if not host or not port:
        return True
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def discover(accelerator: str | None = None) -> list[DeviceKind]:
    """The cluster's device kinds, from one probe task per alive node."""
    ray = import_ray()
    NodeAffinitySchedulingStrategy = heavy("ray.util.scheduling_strategies").NodeAffinitySchedulingStrategy


    nodes = [n for n in alive_nodes() if n.cpus >= 1 or n.gpus >= 1]
    extra = runners.registered_runners()
    probe = remote(ray, _probe_node)
    refs = [probe.options(num_cpus=0, num_gpus=1 if n.gpus >= 1 else 0, max_retries=0, name="hwprofile-probe",
                          scheduling_strategy=NodeAffinitySchedulingStrategy(n.node_id, soft=False))
            .remote(extra, n.gpus >= 1) for n in nodes]
    kinds: dict[str, DeviceKind] = {}
    for node, ref in zip(nodes, refs):
        try:
            info = ray.get(ref, timeout=GRACE_S)
        except Exception as exc:  # a node that cannot run a probe holds no usable device
            if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(exc.cause, HwprofileError):
                raise exc.cause from None
            continue
        node.hostname = info["hostname"] or node.hostname
        entries = []
        if node.cpus >= 1:
            entries.append(("cpu", info["cpu"], info["cpu_runners"]))
        if node.gpus >= 1 and info.get("gpu"):
            if accelerator is None or accelerator in node.accelerators:
                entries.append(("cuda", info["gpu"], info["gpu_runners"]))
        for device_type, fp, offered in entries:
            kind_id = fp["id"] + (f"@{node.label}" if node.label else "")
            kind = kinds.get(kind_id)
            if kind is None:
                fp = {**fp, "id": kind_id, "ray": {"node_id": node.node_id, "address": node.address,
                                                   "hostname": node.hostname, "label": node.label}}
                kind = kinds[kind_id] = DeviceKind(kind_id, device_type, fp, runners=list(offered))
            else:
                kind.runners = [r for r in kind.runners if r in offered]
            kind.nodes.append(node)
    return sorted(kinds.values(), key=lambda k: (k.device_type != "cuda", k.id))


_REMOTES: dict = {}


def remote(ray, fn):
    """``ray.remote(fn)``, made once per function (each one is exported to the cluster when first used)."""
    if fn not in _REMOTES:
        _REMOTES[fn] = ray.remote(fn)
    return _REMOTES[fn]
