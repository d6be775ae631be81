"""The Ray executor: each measurement is a Ray task on a cluster node that holds the device.

How it schedules (Ray does the placing; hwprofile writes no scheduler):

- **Device kinds.** One probe task per alive node (pinned with ``NodeAffinitySchedulingStrategy``)
  measures that node's fingerprint and which runners it offers. Nodes whose fingerprints give the
  same device id (``cpu-<model>-<cores>c``, ``gpu-<name>``) form one *kind*. A node started with a
  custom resource ``hwprofile:LABEL`` (``ray start --resources '{"hwprofile:big": 1}'``) forms the
  kind ``<device id>@LABEL``: that splits nodes a fingerprint cannot tell apart (same CPU model,
  different container limits or instance families).
- **One measurement per machine.** A CPU measurement asks Ray for *all* of the node's CPUs
  (``num_cpus`` = the node's CPU resource) and is pinned to one node of its kind: Ray never runs a
  second measurement, or any other CPU-using Ray task, on that node's cores meanwhile. A GPU
  measurement asks for ``num_gpus=1`` (Ray sets ``CUDA_VISIBLE_DEVICES``, so it is ``cuda:0`` in
  the task) and, with ``--accelerator TYPE``, Ray's ``accelerator_type``.
- **Same measurement.** The task runs :func:`hwprofile.measure.measure`, which measures in
  hwprofile's isolated child process with the same statistics and statuses as a local run. The
  driver keeps the profile and saves it after each record, so ``--resume`` works.
- **Artifacts move once.** An ONNX file is read once by the driver, put in Ray's object store
  and written to a per-node cache (``$TMPDIR/hwprofile-ray/<sha256>.onnx``) on first use; files
  under ``shared_cache`` (a path every node mounts) are passed by path. TensorRT engines are built
  by the runner on the node that measures (they are device-specific).
- **Faults.** A killed task or dead worker, a dead node, or an unschedulable task becomes a
  record's status (``crashed`` / ``oom`` / ``failed``) with its reason, retried once on another
  alive node of the same kind where there is one. A lost connection to the cluster stops the sweep
  (exit 3) after recording the item as ``skipped`` (so ``--resume`` measures it again).

hwprofile's own code travels to the nodes with the tasks (Ray ``py_modules``), so nodes run the
driver's version; they need hwprofile's dependencies (torch, onnxruntime, ...) installed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import time
from pathlib import Path

from .. import errors
from .. import runners as registry
from .._lazy import heavy
from ..datatypes import Device
from ..errors import ConfigError, DeviceUnavailable, EnvironmentProblem, HwprofileError, RunnerUnavailable
from ..atomic import make_folder, write_bytes
from ..locks import profile_lock
from ..measure import TimingConfig, Workload
from ..measure.core import measure
from ..profile import Profile, utc_now
from ..runners import runner_class
from ..sweep import check_writable, run_sweep
from . import Target
from .ray_cluster import GRACE_S, DeviceKind, Node, alive_nodes, connect, discover, import_ray, register_runners, remote

TASK_NAME = "hwprofile-measure"


# ------------------------------------------------------------------------------ in the task

def _remote_measure(runner: str, workload: dict, timing: dict, timeout_s: float, device: str,
                    blob: bytes | None, sha: str | None, extra_runners: dict, kw: dict) -> dict:
    """On the node: write a shipped artifact to the node cache, then measure as a local run does."""
    ray = heavy("ray")


    node = ray.get_runtime_context().get_node_id()
    try:
        register_runners(extra_runners)
        if blob is not None:
            workload = {**workload, "path": str(_node_cache(blob, sha, Path(workload["path"]).suffix))}
        m = measure(runner, Workload.from_dict(workload), TimingConfig.from_dict(timing), timeout_s=timeout_s,
                    device=device, **kw)
        return {"node": node, "measurement": m.to_dict()}
    except HwprofileError as exc:  # bad input / unavailable runner: raised again by the driver
        return {"node": node, "error": {"type": type(exc).__name__, "message": str(exc),
                                        "exit_code": exc.exit_code}}


def _node_cache(blob: bytes, sha: str, suffix: str) -> Path:
    root = Path(tempfile.gettempdir()) / "hwprofile-ray"
    path = root / f"{sha}{suffix or '.onnx'}"
    if not path.is_file():
        write_bytes(path, blob, replace=True, what="node cache file")
    return path


def shared_folder(text: str) -> Path:
    """``--shared-cache DIR`` resolved (created if missing): a folder, or a one-line error (a link loop, a file...)."""
    try:
        if not os.path.lexists(text):
            make_folder(text, "--shared-cache folder")
        folder = Path(text).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop (Python < 3.13)
        why = "a symbolic link loop" if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == 40 \
            else (getattr(exc, "strerror", None) or str(exc))
        raise ConfigError(f"--shared-cache {text!r}: cannot be resolved ({why})") from None
    if not folder.is_dir():
        raise ConfigError(f"--shared-cache {text!r}: not a folder")
    return folder


def _raise_remote(error: dict) -> None:
    cls = getattr(errors, error["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, HwprofileError)):
        cls = EnvironmentProblem if error.get("exit_code") == 3 else ConfigError
    raise cls(error["message"])


# ------------------------------------------------------------------------------ the executor

class RayExecutor:
    """Measures on a Ray cluster; ``kind`` pins it to one device kind (fleet mode sets it)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, accelerator: str | None = None,
                 shared_cache: str | None = None, kinds: list[DeviceKind] | None = None,
                 kind: DeviceKind | None = None):
        self.address = address
        self.accelerator = accelerator
        self.shared_cache = shared_folder(shared_cache) if shared_cache else None
        self._kinds = kinds
        self.kind = kind
        self._owns = False
        self._blobs: dict[str, tuple] = {}
        self._stop: str | None = None
        self._preferred: str | None = None

    # -- lifecycle
    def connect(self) -> "RayExecutor":
        self._owns = connect(self.address) or self._owns
        return self

    def close(self) -> None:
        if self._owns:
            import_ray().shutdown()
            self._owns = False

    def kinds(self) -> list[DeviceKind]:
        if self._kinds is None:
            self._kinds = discover(self.accelerator)
            if self.accelerator and not any(k.device_type == "cuda" for k in self._kinds):
                seen = sorted({a for n in alive_nodes() for a in n.accelerators})
                raise DeviceUnavailable(f"no node of the Ray cluster has accelerator type {self.accelerator!r} "
                                        f"(seen: {', '.join(seen) or 'none'})")
        return self._kinds

    def for_kind(self, kind: DeviceKind) -> "RayExecutor":
        """An executor sharing this connection and artifact cache, pinned to ``kind``."""
        other = RayExecutor(self.address, accelerator=self.accelerator, kinds=self._kinds, kind=kind)
        other.shared_cache, other._blobs = self.shared_cache, self._blobs
        return other

    # -- Executor protocol
    def select(self, device: str) -> DeviceKind:
        """The device kind ``device`` names: auto, cpu, cuda[:N] (any GPU kind) or a kind id."""
        kinds = self.kinds()
        text = str(device).strip().lower()
        if text in ("cuda", "gpu") or text.startswith("cuda:"):
            text = "cuda"
        elif text == "auto":
            text = "cuda" if any(k.device_type == "cuda" for k in kinds) else "cpu"
        if text in ("cpu", "cuda"):
            matches = [k for k in kinds if k.device_type == text]
        else:
            matches = [k for k in kinds if k.id.lower() == text]
        listing = ", ".join(f"{k.id} ({len(k.nodes)} node{'s' * (len(k.nodes) != 1)})" for k in kinds) or "none"
        if not matches:
            raise DeviceUnavailable(f"no node of the Ray cluster holds device {device!r} (device kinds there: "
                                    f"{listing})")
        if len(matches) > 1:
            raise ConfigError(f"the Ray cluster has several {text} kinds ({listing}): choose one with --device KIND "
                              "or profile every kind with --device all")
        return matches[0]

    def target(self, config) -> Target:
        if self.kind is None:
            self.kind = self.select(config.device)
        kind = self.kind
        if config.runners:
            runners = list(config.runners)
            for r in runners:
                if r not in kind.runners:
                    raise RunnerUnavailable(f"runner {r} is unavailable on the {kind.id} nodes of the Ray cluster "
                                            f"(available there: {', '.join(kind.runners) or 'none'})")
        else:
            runners = [r for r in kind.runners if runner_class(r).device_type == kind.device_type]
        if config.mode == "train":
            runners = [r for r in runners if r.startswith("torch:")]
        return Target(kind.device, runners, kind.fingerprint, kind.id)

    def stop_reason(self) -> str | None:
        return self._stop

    def measure(self, runner: str, workload, timing, timeout_s: float, device: str, **kw) -> dict:
        ray = import_ray()
        if self._stop:
            return _failure(runner, "skipped", self._stop)
        blob, sha = self._artifact(workload)
        nodes = self._candidates()
        if self._stop:
            return _failure(runner, "skipped", self._stop)
        if not nodes:
            return _failure(runner, "failed", f"no alive node of kind {self.kind.id} is left in the Ray cluster")
        faults: list[str] = []
        for node in nodes[:2]:  # retried once, on another node of the kind
            opts = self._options(node)
            ref = remote(ray, _remote_measure).options(**opts).remote(
                runner, workload.to_dict(), timing.to_dict(), timeout_s, device, blob, sha,
                registry.registered_runners(), kw)
            guard = timeout_s * max(1, timing.repeats) + GRACE_S
            status, reason, answer = self._wait(ray, ref, node, guard)
            if answer is not None:
                if "error" in answer:
                    _raise_remote(answer["error"])
                md = answer["measurement"]
                md["settings"] = {**(md.get("settings") or {}), "executor": "ray", "node": answer["node"],
                                  "node_address": node.address, "node_hostname": node.hostname}
                if faults:
                    md["settings"]["ray_retried_after"] = faults
                self._preferred = node.node_id
                return md
            faults.append(reason)
            if status == "skipped":  # the connection is gone: nothing to retry on
                break
        reason = "; then ".join(faults)
        if len(faults) == 1 and status != "skipped":
            reason += f" (no other alive node of kind {self.kind.id} to retry on)"
        md = _failure(runner, status, reason)
        md["settings"].update(node=node.node_id, node_address=node.address, node_hostname=node.hostname)
        return md

    # -- helpers
    def _candidates(self) -> list[Node]:
        try:
            alive = {n.node_id for n in alive_nodes()}
        except Exception as exc:
            self._stop = f"lost the connection to the Ray cluster: {type(exc).__name__}: {str(exc)[:200]}"
            return []
        nodes = [n for n in self.kind.nodes if n.node_id in alive]
        nodes.sort(key=lambda n: n.node_id != self._preferred)
        return nodes

    def _options(self, node: Node) -> dict:
        NodeAffinitySchedulingStrategy = heavy("ray.util.scheduling_strategies").NodeAffinitySchedulingStrategy

        opts: dict = {"name": TASK_NAME, "max_retries": 0, "retry_exceptions": False,
                      "scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False)}
        if self.kind.device_type == "cuda":
            opts.update(num_gpus=1, num_cpus=1 if node.cpus >= 1 else 0)
            if self.accelerator:
                opts["accelerator_type"] = self.accelerator
        else:
            opts.update(num_cpus=node.cpus)  # the whole node: no other measurement shares its cores
        return opts

    def _wait(self, ray, ref, node: Node, guard: float):
        """(status, reason, None) for a fault, or (None, None, answer)."""
        ex = ray.exceptions
        where = f"node {node.address or node.node_id[:12]} ({node.node_id[:12]})"
        try:
            return None, None, ray.get(ref, timeout=guard)
        except ex.GetTimeoutError:
            ray.cancel(ref, force=True)
            return "timeout", f"no answer from {where} within {guard:g} s; the Ray task was cancelled", None
        except ex.OutOfMemoryError as exc:
            return "oom", f"Ray's memory monitor killed the task on {where}: {_first(exc)}", None
        except (ex.NodeDiedError, ex.LocalRayletDiedError) as exc:
            return "crashed", f"{where} died while measuring: {_first(exc)}", None
        except (ex.WorkerCrashedError, ex.TaskCancelledError) as exc:
            return "crashed", f"the Ray task was killed on {where} ({type(exc).__name__}: {_first(exc)})", None
        except ex.TaskUnschedulableError as exc:
            return "failed", f"the Ray task could not be scheduled on {where}: {_first(exc)}", None
        except ex.RayTaskError as exc:
            return "failed", f"the Ray task failed on {where}: {_first(exc)}", None
        except (ConnectionError, ex.RaySystemError, ex.RpcError) as exc:
            self._stop = f"lost the connection to the Ray cluster: {type(exc).__name__}: {_first(exc)}"
            return "skipped", self._stop, None
        except ex.RayError as exc:  # e.g. RuntimeEnvSetupError: the node could not prepare the task
            return "failed", f"Ray could not run the task on {where}: {type(exc).__name__}: {_first(exc)}", None

    def _artifact(self, workload) -> tuple[object | None, str | None]:
        """An ONNX/engine file as (object ref of its bytes, sha256), read and put once; None for shared files."""
        if workload.kind == "spec" or not workload.path:
            return None, None
        path = Path(workload.path).resolve()
        if self.shared_cache and path.is_relative_to(self.shared_cache):
            return None, None
        key = str(path)
        if key not in self._blobs:
            data = path.read_bytes()
            self._blobs[key] = (import_ray().put(data), hashlib.sha256(data).hexdigest())
        return self._blobs[key]


def _first(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:240]


def _failure(runner: str, status: str, reason: str) -> dict:
    return {"runner": runner, "status": status, "reason": reason, "latency": None, "throughput": None,
            "memory": {}, "settings": {"executor": "ray"}, "wall_s": 0.0}


# ------------------------------------------------------------------------------ sweeps

def run_ray(config, out=None, *, resume: bool = False, quiet: bool = False, address: str | None = None,
            accelerator: str | None = None, shared_cache: str | None = None, remeasure: str | None = None):
    """``run_sweep`` through Ray: one device (``config.device``) or every kind (``--device all``)."""
    if shared_cache:
        config = dataclasses.replace(config, cache_dir=shared_cache)
    executor = RayExecutor(address, accelerator=accelerator, shared_cache=shared_cache).connect()
    try:
        if str(config.device).strip().lower() != "all":
            return run_sweep(config, out, resume=resume, quiet=quiet, executor=executor, remeasure=remeasure)
        return run_fleet(config, out, resume=resume, quiet=quiet, executor=executor, remeasure=remeasure)
    finally:
        executor.close()


def kind_config(config, kind: DeviceKind) -> tuple[object | None, list[str]]:
    """``config`` for one kind of a fleet (its runners of that device type), and notes."""
    if not config.runners:
        return dataclasses.replace(config, device=kind.id, runners=None), []
    mine = [r for r in config.runners if runner_class(r).device_type == kind.device_type]
    usable = [r for r in mine if r in kind.runners]
    notes = [f"{kind.id}: {', '.join(r for r in mine if r not in usable)} unavailable there; not measured"] \
        if len(usable) < len(mine) else []
    if not usable:
        return None, notes + [f"{kind.id}: none of the runners asked for runs there; kind skipped"]
    return dataclasses.replace(config, device=kind.id, runners=tuple(usable)), notes


def run_fleet(config, out=None, *, resume: bool = False, quiet: bool = False, executor: RayExecutor,
              remeasure: str | None = None):
    """Every device kind of the cluster once, each with its default batch sizes, into one profile."""
    kinds = executor.kinds()
    if not kinds:
        raise DeviceUnavailable("the Ray cluster has no node with a CPU or GPU resource to measure on")
    plans, notes = [], []
    for kind in kinds:
        cfg, why = kind_config(config, kind)
        notes += why
        if cfg is not None:
            plans.append((kind, cfg))
    unused = [r for r in config.runners or () if not any(r in (cfg.runners or ()) for _, cfg in plans)]
    notes += [f"{r}: no device kind of the cluster runs it; not measured" for r in unused]
    if not plans:
        raise ConfigError("empty sweep: no device kind of the cluster runs the runners asked for ("
                          + "; ".join(notes) + ")")
    path = Path(out) if out else Path("runs") / f"fleet-{time.strftime('%Y%m%d-%H%M%S')}.json"
    with profile_lock(path):  # the per-kind sweeps below resume this file in the same process: the lock nests
        return _fleet_sweeps(config, path, plans, notes, resume=resume, quiet=quiet, executor=executor,
                             remeasure=remeasure)


def _fleet_sweeps(config, path: Path, plans: list, notes: list[str], *, resume: bool, quiet: bool,
                  executor: RayExecutor, remeasure: str | None):
    if resume:
        profile = Profile.load(path)
        gone = [d for d in profile.devices if d not in {k.id for k, _ in plans}]
        notes += [f"{d}: in the profile but no node of that kind is in the cluster now; not resumed" for d in gone]
    else:
        if path.exists():
            raise ConfigError(f"{str(path)!r} already exists; choose another --out, or --resume it")
        check_writable(path)
        profile = Profile()
    for kind, cfg in plans:
        if kind.id not in profile.devices:
            profile.devices[kind.id] = Device.model_validate(kind.fingerprint)
            profile.sweeps.append({"device_id": kind.id, "config": cfg.identity(), "started_utc": utc_now(),
                                   "executor": "ray"})
    profile.save(path)
    for kind, cfg in plans:
        profile, _, more = run_sweep(cfg, path, resume=True, quiet=quiet, executor=executor.for_kind(kind),
                                     remeasure=remeasure)
        notes += [f"{kind.id}: {n}" for n in more]
    return profile, path, notes


def cluster_kinds(address: str | None, accelerator: str | None = None) -> list[dict]:
    """``hwprofile devices --ray-address``: the cluster's device kinds, node counts and runners."""
    executor = RayExecutor(address, accelerator=accelerator).connect()
    try:
        return [k.summary() for k in executor.kinds()]
    finally:
        executor.close()
