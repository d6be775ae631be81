"""The Ray executor: measurements as Ray tasks on the cluster nodes that hold the device, many at once.

How it schedules (Ray places the tasks; the driver picks each one's node, :mod:`.ray_schedule`):

- **Device kinds.** One probe task per alive node (pinned with ``NodeAffinitySchedulingStrategy``)
  measures that node's fingerprint and which runners it offers. Nodes whose fingerprints give the
  same device id (``cpu-<model>-<cores>c``, ``gpu-<name>``) form one *kind*. A node started with a
  custom resource ``hwprofile:LABEL`` (``ray start --resources '{"hwprofile:big": 1}'``) forms the
  kind ``<device id>@LABEL``: that splits nodes a fingerprint cannot tell apart (same CPU model,
  different container limits or instance families).
- **One measurement per machine, every machine busy.** Each node runs at most one measurement at a
  time (one per GPU on a multi-GPU node), and every free node of a kind takes the kind's next item;
  kinds measure side by side. A CPU task asks Ray for *all* of the node's CPUs, so no other CPU-using
  Ray task shares its cores; a GPU task asks for ``num_gpus=1`` (Ray sets ``CUDA_VISIBLE_DEVICES``, so
  it is ``cuda:0`` in the task) and, with ``--accelerator TYPE``, Ray's ``accelerator_type``.
  ``max_nodes`` caps the nodes of each kind measuring at once.
- **Same measurement, same rules.** The task measures the item as a local run does, on the node: the
  system check before each measurement, the quality grading, the re-measuring of disturbed records
  (:func:`hwprofile.measure.measure_with_retries`, in hwprofile's isolated child processes), with the
  environment a local run on that node would have (:func:`.ray_cluster.node_environment`). Each kind's
  device peaks are measured once per profile, on one of its nodes.
- **The driver keeps the profile** and saves it after each record, in whatever order they finish, so
  ``--resume`` works. Items are counted and their ONNX inputs exported on the driver.
- **Artifacts move once.** An ONNX file is read once by the driver, put in Ray's object store
  and written to a per-node cache (``$TMPDIR/hwprofile-ray/<sha256>.onnx``) on first use; files
  under ``shared_cache`` (a path every node mounts) are passed by path.
- **Faults.** A killed task or dead worker, a dead node, an unschedulable task or no answer in time
  becomes a record's status (``crashed`` / ``oom`` / ``failed`` / ``timeout``) with its reason, retried
  once on another alive node of the same kind where there is one. A lost connection to the cluster
  records the items in flight as ``skipped`` (``--resume`` measures them again) and stops the sweep
  (exit 3).

hwprofile's own code, and each registered plugin runner's module, travel to the nodes with the tasks
(Ray ``py_modules``), so nodes run the driver's version; they need hwprofile's dependencies (torch,
onnxruntime, ...) installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
import time
from pathlib import Path

from hwprofile import errors
from hwprofile import runners as registry
from hwprofile._lazy import heavy
from hwprofile.atomic import make_folder, write_bytes
from hwprofile.errors import (
    ConfigError,
    DeviceUnavailable,
    EnvironmentProblem,
    HwprofileError,
    Interrupted,
    RunnerUnavailable,
)
from hwprofile.fleet._cluster import (
    GRACE_S,
    DeviceKind,
    Node,
    alive_nodes,
    answers,
    connect,
    discover,
    import_ray,
    node_environment,
    register_runners,
    remote,
)
from hwprofile.fleet._schedule import KindSweep, NodeSlots, Scheduler
from hwprofile.locks import profile_lock
from hwprofile.measure import measure, measure_peaks, measure_with_retries
from hwprofile.profile import Device, Profile, TimingConfig, Workload, utc_now
from hwprofile.runners import Artifacts, runner_class
from hwprofile.sweep import (
    FleetPlan,
    ReadyItem,
    SweepConfig,
    Target,
    check_new_profile,
    check_remeasure,
    check_resumable,
    default_out,
    done_keys,
    fleet_plan,
    make_plan,
    needs_peaks,
    open_profile,
    sigterm_as_interrupt,
    target_items,
    timing_config,
    validate,
)

TASK_NAME = "hwprofile-measure"
PEAKS_TASK_NAME = "hwprofile-peaks"
#: seconds a node's peaks may take (hwprofile.measure.measure_peaks's own timeout)
PEAKS_TIMEOUT_S = 600.0


# ------------------------------------------------------------------------------ in the task

def _remote_item(ready: ReadyItem, timing: TimingConfig, blob: bytes | None, sha: str | None,
                 extra_runners: dict, where: dict) -> dict:
    """On the node: write a shipped artifact to the node cache, then measure as a local run does (system check,
    quality grading, re-measuring of disturbed records); the record as a dict."""
    ray = heavy("ray")

    node = ray.get_runtime_context().get_node_id()
    with node_environment():
        try:
            register_runners(extra_runners)
            if blob is not None:
                if sha is None or ready.workload.path is None:
                    raise RuntimeError("a shipped artifact travels with its sha256 and its file name")  # a bug
                path = _node_cache(blob, sha, Path(ready.workload.path).suffix)
                ready = dataclasses.replace(ready, workload=Workload.from_dict({**ready.workload.to_dict(),
                                                                                "path": str(path)}))
            settings = {**where, "executor": "ray", "node": node}

            def once():
                return ready.measure(timing, measure, settings)

            record = measure_with_retries(once, ready.device, retries=ready.config.retries,
                                                  backoff_s=ready.config.retry_backoff_s)
            return {"node": node, "record": record.to_dict()}
        except HwprofileError as exc:  # bad input / unavailable runner: raised again by the driver
            return {"node": node, "error": {"type": type(exc).__name__, "message": str(exc),
                                            "exit_code": exc.exit_code}}


def _remote_peaks(device: str) -> dict:
    """On the node: its device's peaks (hwprofile.measure.measure_peaks)."""
    ray = heavy("ray")

    with node_environment():
        return {"node": ray.get_runtime_context().get_node_id(), "peaks": measure_peaks(device)}


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

def check_max_nodes(max_nodes: int | None) -> None:
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ConfigError(f"--max-nodes {max_nodes!r}: expected an integer >= 1")


class RayExecutor:
    """Measures on a Ray cluster; ``kind`` pins it to one device kind; ``max_nodes`` caps the nodes of each kind
    measuring at once."""

    name = "ray"

    def __init__(self, address: str | None = None, *, accelerator: str | None = None,
                 shared_cache: str | None = None, kinds: list[DeviceKind] | None = None,
                 kind: DeviceKind | None = None, max_nodes: int | None = None):
        check_max_nodes(max_nodes)
        self.address = address
        self.accelerator = accelerator
        self.shared_cache = shared_folder(shared_cache) if shared_cache else None
        self._kinds = kinds
        self.kind = kind
        self.max_nodes = max_nodes
        self._owns = False
        self._blobs: dict[str, tuple] = {}
        self._gcs: tuple[str, int] | None = None

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
        other = RayExecutor(self.address, accelerator=self.accelerator, kinds=self._kinds, kind=kind,
                            max_nodes=self.max_nodes)
        other.shared_cache, other._blobs = self.shared_cache, self._blobs
        return other

    # -- which device
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

    # -- a whole sweep (hwprofile.sweep.run_sweep hands it over)
    def run_sweep(self, config, out=None, *, resume: bool = False, quiet: bool = False,
                  remeasure: str | None = None, peaks: bool | None = None):
        """One device kind's sweep, its items measured concurrently on the kind's nodes."""
        validate(config, local=False)
        check_remeasure(remeasure, resume)
        timing_config(config)
        target = self.target(config)
        items, notes = target_items(config, target)
        path = Path(out) if out else default_out(target.device_id)
        with profile_lock(path), interrupted_names(path):
            profile = open_profile(config, path, resume, target.device_id, target.fingerprint)
            profile.save(path)
            schedule(profile, path, [(self.kind, config, target, items)], self, quiet=quiet, remeasure=remeasure,
                     peaks=peaks)
        return profile, path, notes

    # -- what the scheduler asks (hwprofile.fleet._schedule.Scheduler)
    def submit(self, work, node: Node):
        ray = import_ray()
        kind = work.sweep.kind
        opts = self._options(kind, node)
        if work.item is None:
            return remote(ray, _remote_peaks).options(**opts, name=PEAKS_TASK_NAME).remote(work.sweep.device)
        ready = work.ready
        blob, sha = self._artifact(ready.workload)
        where = self.where_settings(node)
        if work.faults:
            where["ray_retried_after"] = list(work.faults)
        return remote(ray, _remote_item).options(**opts, name=TASK_NAME).remote(
            ready, work.sweep.timing, blob, sha, registry.registered_runners(), where)

    def wait(self, refs: list, timeout_s: float) -> list:
        finished, _ = import_ray().wait(refs, num_returns=1, timeout=timeout_s)
        return finished

    def outcome(self, ref, node: Node):
        """(status, reason, None) for a fault, (None, None, answer) for a finished task; a task's own
        HwprofileError (bad input, unavailable runner) is raised here."""
        ray = import_ray()
        ex = ray.exceptions
        where = self.where(node)
        try:
            answer = ray.get(ref, timeout=GRACE_S)
        except ex.GetTimeoutError:
            return "timeout", f"{where} finished the task but its answer did not arrive", None
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
            return "skipped", self.lost(exc), None
        except ex.RayError as exc:  # e.g. RuntimeEnvSetupError: the node could not prepare the task
            return "failed", f"Ray could not run the task on {where}: {type(exc).__name__}: {_first(exc)}", None
        if "error" in answer:
            _raise_remote(answer["error"])
        return None, None, answer

    def cancel(self, ref) -> None:
        try:
            import_ray().cancel(ref, force=True)
        except Exception:  # already finished, or the connection is gone: nothing left to stop
            pass

    def guard_s(self, work) -> float:
        """How long the driver waits for a task: its measurements' own timeouts, back-offs and a grace."""
        if work.item is None:
            return PEAKS_TIMEOUT_S + GRACE_S
        ready, timing = work.ready, work.sweep.timing
        config = ready.config
        tries = config.retries + 1
        backoff = config.retry_backoff_s * (2 ** config.retries - 1)
        return ready.timeout_s * max(1, timing.repeats) * tries + backoff + GRACE_S

    @staticmethod
    def where(node: Node) -> str:
        return f"node {node.address or node.node_id[:12]} ({node.node_id[:12]})"

    @staticmethod
    def where_settings(node: Node) -> dict:
        return {"executor": "ray", "node": node.node_id, "node_address": node.address,
                "node_hostname": node.hostname}

    def gcs_answers(self) -> bool:
        """Whether the cluster's GCS accepts a connection (Ray gives a driver no other cheap way to tell)."""
        if self._gcs is None:
            host, _, port = str(import_ray().get_runtime_context().gcs_address).rpartition(":")
            self._gcs = (host, int(port))
        return answers(*self._gcs)

    @staticmethod
    def node_answers(node: Node) -> bool:
        """Whether the node's raylet accepts a connection: after a fault, a node that does not is dead even
        before the GCS says so (its health checks take seconds)."""
        return answers(node.address, node.port)

    @staticmethod
    def alive_ids() -> set[str]:
        return {n.node_id for n in alive_nodes()}

    @staticmethod
    def lost(exc: BaseException) -> str:
        return f"lost the connection to the Ray cluster: {type(exc).__name__}: {_first(exc)}"

    # -- helpers
    def _options(self, kind: DeviceKind, node: Node) -> dict:
        NodeAffinitySchedulingStrategy = heavy("ray.util.scheduling_strategies").NodeAffinitySchedulingStrategy

        opts: dict = {"max_retries": 0, "retry_exceptions": False,
                      "scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False)}
        if kind.device_type == "cuda":
            # one GPU; a share of the node's CPUs that lets every GPU measure at once and keeps a CPU
            # measurement (all CPUs) off the node meanwhile. Its thread count is not Ray's (node_environment).
            opts.update(num_gpus=1, num_cpus=min(1.0, node.cpus / max(1.0, node.gpus)))
            if self.accelerator:
                opts["accelerator_type"] = self.accelerator
        else:
            opts.update(num_cpus=node.cpus)  # the whole node: no other measurement shares its cores
        return opts

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


# ------------------------------------------------------------------------------ sweeps

def schedule(profile: Profile, path: Path, plans: list[tuple], executor: RayExecutor, *, quiet: bool = False,
             remeasure: str | None = None, peaks: bool | None = None) -> Profile:
    """Measure ``plans`` ([(kind, config, target, items)]) concurrently into ``profile`` (saved at ``path``)."""
    done = done_keys(profile, remeasure)
    sweeps = []
    for kind, config, target, items in plans:
        sweeps.append(KindSweep(kind, config, target.device_id, target.device, timing_config(config), items,
                                Artifacts.for_items(items, config.cache_dir), done=done,
                                peaks=(peaks is not False) and needs_peaks(profile, target.device_id)))
    with sigterm_as_interrupt():
        return Scheduler(sweeps, profile, path, executor, quiet=quiet, max_nodes=executor.max_nodes).run()


@contextlib.contextmanager
def interrupted_names(path: Path):
    """^C (or SIGTERM, hwprofile.sweep.sigterm_as_interrupt) inside the block is an
    :class:`~hwprofile.errors.Interrupted` naming ``path`` when it exists (the block checked that a new profile's
    path was free, so the file there holds the work so far)."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(path if path.exists() else None) from None


def run_ray(config, out=None, *, resume: bool = False, quiet: bool = False, address: str | None = None,
            accelerator: str | None = None, shared_cache: str | None = None, remeasure: str | None = None,
            max_nodes: int | None = None, peaks: bool = True):
    """``run_sweep`` through Ray: one device (``config.device``) or every kind (``--device all``)."""
    if shared_cache:
        config = dataclasses.replace(config, cache_dir=shared_cache)
    check_max_nodes(max_nodes)
    executor = RayExecutor(address, accelerator=accelerator, shared_cache=shared_cache, max_nodes=max_nodes).connect()
    try:
        if str(config.device).strip().lower() != "all":
            return executor.run_sweep(config, out, resume=resume, quiet=quiet, remeasure=remeasure, peaks=peaks)
        return run_fleet(config, out, resume=resume, quiet=quiet, executor=executor, remeasure=remeasure,
                         peaks=peaks)
    finally:
        executor.close()


def kind_config(config: SweepConfig, kind: DeviceKind) -> tuple[SweepConfig | None, list[str]]:
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


def fleet_plans(config, executor: RayExecutor) -> tuple[list[tuple], list[str]]:
    """[(kind, config, target, items)] of every device kind that runs the sweep's runners, and notes."""
    kinds = executor.kinds()
    if not kinds:
        raise DeviceUnavailable("the Ray cluster has no node with a CPU or GPU resource to measure on")
    plans, notes = [], []
    for kind in kinds:
        cfg, why = kind_config(config, kind)
        notes += why
        if cfg is not None:
            target = executor.for_kind(kind).target(cfg)
            items, more = target_items(cfg, target)
            plans.append((kind, cfg, target, items))
            notes += [f"{kind.id}: {n}" for n in more]
    unused = [r for r in config.runners or () if not any(r in (planned.runners or ()) for _, planned, _, _ in plans)]
    notes += [f"{r}: no device kind of the cluster runs it; not measured" for r in unused]
    if not plans:
        raise ConfigError("empty sweep: no device kind of the cluster runs the runners asked for ("
                          + "; ".join(notes) + ")")
    return plans, notes


def run_fleet(config, out=None, *, resume: bool = False, quiet: bool = False, executor: RayExecutor,
              remeasure: str | None = None, peaks: bool | None = None):
    """Every device kind of the cluster once, each with its default batch sizes, into one profile; the kinds
    measure side by side."""
    validate(config, local=False)
    check_remeasure(remeasure, resume)
    plans, notes = fleet_plans(config, executor)
    path = Path(out) if out else Path("runs") / f"fleet-{time.strftime('%Y%m%d-%H%M%S')}.json"
    with profile_lock(path), interrupted_names(path):
        return _fleet_sweeps(config, path, plans, notes, resume=resume, quiet=quiet, executor=executor,
                             remeasure=remeasure, peaks=peaks)


def _fleet_sweeps(config, path: Path, plans: list, notes: list[str], *, resume: bool, quiet: bool,
                  executor: RayExecutor, remeasure: str | None, peaks: bool | None = None):
    if resume:
        profile = Profile.load(path)
        here = {k.id for k, _, _, _ in plans}
        gone = [d for d in profile.devices if d not in here]
        notes += [f"{d}: in the profile but no node of that kind is in the cluster now; not resumed" for d in gone]
    else:
        check_new_profile(path)
        profile = Profile()
    for kind, cfg, _, _ in plans:
        if kind.id not in profile.devices:
            profile.devices[kind.id] = Device.model_validate(kind.fingerprint)
            profile.sweeps.append({"device_id": kind.id, "config": cfg.identity(), "started_utc": utc_now(),
                                   "executor": "ray"})
        elif resume:
            check_resumable(profile, path, kind.id, cfg)
    profile.save(path)
    schedule(profile, path, plans, executor, quiet=quiet, remeasure=remeasure, peaks=peaks)
    return profile, path, notes


def cluster_kinds(address: str | None, accelerator: str | None = None) -> list[dict]:
    """``hwprofile devices --ray-address``: the cluster's device kinds, node counts and runners."""
    executor = RayExecutor(address, accelerator=accelerator).connect()
    try:
        return [k.summary() for k in executor.kinds()]
    finally:
        executor.close()


def plan_on_cluster(config, *, address: str | None = None, accelerator: str | None = None,
                    max_nodes: int | None = None) -> FleetPlan:
    """``run --plan --executor ray``: the cluster's kinds (probed, nothing measured), the items of each and the
    expected wall time on its nodes."""
    check_max_nodes(max_nodes)
    validate(config)
    executor = RayExecutor(address, accelerator=accelerator, max_nodes=max_nodes).connect()
    try:
        if str(config.device).strip().lower() == "all":
            plans, notes = fleet_plans(config, executor)
        else:
            kind = executor.select(config.device)
            target = executor.for_kind(kind).target(config)
            plans, notes = [(kind, config, target, target_items(config, target)[0])], []
        kinds = []
        for kind, cfg, target, _ in plans:
            plan = make_plan(dataclasses.replace(cfg, device=target.device, runners=tuple(target.runners)))
            kinds.append((kind.id, kind.device_type, [NodeSlots.capacity(kind, n) for n in kind.nodes], plan))
        return fleet_plan(kinds, max_nodes, tuple(notes))
    finally:
        executor.close()
