"""Measuring concurrently on a Ray cluster: which node each measurement runs on, and the driver's loop.

The scheduling rule (docs/fleet.md, "Scheduling"):

- **One measurement per machine.** A node runs at most one hwprofile measurement at a time; a node with
  several GPUs runs at most one per GPU (Ray gives each task its own GPU). A CPU measurement has its node to
  itself: no GPU measurement starts there meanwhile, and a GPU measurement keeps CPU measurements off its
  node. Ray's resources say the same (a CPU task asks for all of the node's CPUs), so the rule also holds
  against other Ray work.
- **Every node busy.** As soon as a node of a kind is free it gets that kind's next item; the driver waits
  on every task in flight at once (``ray.wait``). Kinds run side by side (``--device all``).
- **A cap.** ``max_nodes`` (``run --max-nodes N``): at most N nodes of each kind measure at the same time,
  the nodes used before first.
- **Per kind, first its peaks** (once per profile), on one node while the others measure items.
- **Faults.** A task lost to a Ray fault (killed, its node died, out of memory, not schedulable, no answer
  in time) is retried once on another alive node of its kind, before new items; the record says both
  attempts when the retry fails too.
- **The driver keeps the profile**: it saves after every record, in any completion order, with the records
  in the sweep's order, so ``--resume`` finds every finished record. A lost connection to the cluster (its
  GCS has not answered for :data:`LOST_AFTER_S`) records the items in flight as ``skipped`` and stops.

:class:`NodeSlots` is the bookkeeping (plain Python, no Ray); :class:`Scheduler` the loop.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hwprofile.errors import MeasurementError
from hwprofile.fleet._cluster import DeviceKind, Node
from hwprofile.profile import Profile, Record, TimingConfig
from hwprofile.runners import Artifacts
from hwprofile.sweep import Item, ReadyItem, SweepConfig, item_key, progress, ready_item, set_peaks, unmeasured

#: seconds without an answer from the cluster's GCS after which the driver stops (Ray itself ends a driver
#: whose GCS stays away for ``RAY_gcs_rpc_server_reconnect_timeout_s``, 60 s by default: this comes first)
LOST_AFTER_S = 10.0
#: how often the driver checks that the GCS answers, and re-reads which nodes are alive
CHECK_EVERY_S = 1.0


def lost_after_s() -> float:
    """:data:`LOST_AFTER_S`, or half of Ray's own reconnect timeout when that is shorter."""
    try:
        ray_s = float(os.environ.get("RAY_gcs_rpc_server_reconnect_timeout_s", "60"))
    except ValueError:
        ray_s = 60.0
    return max(1.0, min(LOST_AFTER_S, ray_s / 2))


# ------------------------------------------------------------------------------ bookkeeping

class NodeSlots:
    """Which node of a kind a measurement may start on now (the rule in the module docstring)."""

    def __init__(self, kinds: list[DeviceKind], max_nodes: int | None = None):
        self.kinds = {k.id: k for k in kinds}
        self.max_nodes = max_nodes
        self.alive: set[str] = {n.node_id for k in kinds for n in k.nodes}
        self.cpu_busy: set[str] = set()  # nodes running a CPU measurement
        self.gpu_busy: dict[str, int] = {}  # node -> GPU measurements running there
        self.busy: dict[str, dict[str, int]] = {k.id: {} for k in kinds}  # kind -> node -> measurements
        self.used: dict[str, list[str]] = {k.id: [] for k in kinds}  # kind -> nodes it has measured on

    @staticmethod
    def capacity(kind: DeviceKind, node: Node) -> int:
        return 1 if kind.device_type == "cpu" else max(1, int(node.gpus))

    def free(self, kind: DeviceKind, node: Node) -> bool:
        nid = node.node_id
        if nid not in self.alive or nid in self.cpu_busy:
            return False
        if kind.device_type == "cpu":
            return not self.gpu_busy.get(nid)
        return self.gpu_busy.get(nid, 0) < self.capacity(kind, node)

    def pick(self, kind_id: str, exclude: frozenset[str] | set[str] = frozenset()) -> Node | None:
        """A node of the kind where a measurement may start now (not in ``exclude``), or None."""
        kind, busy, used = self.kinds[kind_id], self.busy[kind_id], self.used[kind_id]
        nodes = [n for n in kind.nodes if n.node_id not in exclude and self.free(kind, n)]
        if self.max_nodes is not None and len(busy) >= self.max_nodes:
            nodes = [n for n in nodes if n.node_id in busy]  # another GPU of a node it already uses
        nodes.sort(key=lambda n: used.index(n.node_id) if n.node_id in used else len(used))
        return nodes[0] if nodes else None

    def take(self, kind_id: str, node: Node) -> None:
        kind, nid = self.kinds[kind_id], node.node_id
        if kind.device_type == "cpu":
            self.cpu_busy.add(nid)
        else:
            self.gpu_busy[nid] = self.gpu_busy.get(nid, 0) + 1
        self.busy[kind_id][nid] = self.busy[kind_id].get(nid, 0) + 1
        if nid not in self.used[kind_id]:
            self.used[kind_id].append(nid)

    def release(self, kind_id: str, node: Node) -> None:
        kind, nid = self.kinds[kind_id], node.node_id
        if kind.device_type == "cpu":
            self.cpu_busy.discard(nid)
        elif self.gpu_busy.get(nid):
            self.gpu_busy[nid] -= 1
            if not self.gpu_busy[nid]:
                del self.gpu_busy[nid]
        count = self.busy[kind_id].get(nid, 0) - 1
        if count > 0:
            self.busy[kind_id][nid] = count
        else:
            self.busy[kind_id].pop(nid, None)

    def reachable(self, kind_id: str, exclude: frozenset[str] | set[str] = frozenset()) -> bool:
        """Whether an alive node of the kind (not in ``exclude``) is left, busy or not."""
        return any(n.node_id in self.alive and n.node_id not in exclude for n in self.kinds[kind_id].nodes)

    def nodes_busy(self) -> int:
        return len(self.cpu_busy | set(self.gpu_busy))


# ------------------------------------------------------------------------------ the loop

@dataclass
class KindSweep:
    """One device kind's part of a sweep: its configuration, where it measures and what is left to measure."""

    kind: DeviceKind
    config: SweepConfig
    device_id: str
    device: str
    timing: TimingConfig
    items: list[Item]  # in the sweep's order
    artifacts: Artifacts
    done: set = field(default_factory=set)  # keys of records the profile keeps (a resumed sweep's finished ones)
    peaks: bool = False  # measure the kind's peaks first
    queue: deque = field(default_factory=deque)  # items still to start


@dataclass
class Work:
    sweep: KindSweep
    item: Item | None  # None: the kind's peaks
    ready: ReadyItem | None = None
    faults: list[str] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)  # nodes it failed on
    status: str | None = None  # of its last fault
    node: Node | None = None  # where that was

    def prepared(self) -> ReadyItem:
        """The item's prepared measurement (set before it is sent to a node; asking before is a bug)."""
        if self.ready is None:
            raise RuntimeError("the Ray scheduler records an item it never prepared")
        return self.ready


@dataclass
class Flight:
    work: Work
    node: Node
    deadline: float


class Scheduler:
    """Runs every KindSweep's items on the cluster at once and keeps the profile (see the module docstring).

    ``executor`` is the :class:`~hwprofile.fleet._ray.RayExecutor`: it submits a task (``submit(work,
    node) -> ObjectRef``), turns a finished task into its answer or a fault (``outcome(ref, node)``) and
    cancels one (``cancel(ref)``).
    """

    def __init__(self, sweeps: list[KindSweep], profile: Profile, path, executor, *, quiet: bool = False,
                 max_nodes: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.sweeps, self.profile, self.path, self.executor = sweeps, profile, path, executor
        self.quiet, self.clock = quiet, clock
        self.slots = NodeSlots([s.kind for s in sweeps], max_nodes)
        self.retries: dict[str, deque] = {s.kind.id: deque() for s in sweeps}
        self.flights: dict[object, Flight] = {}
        self.stop: str | None = None
        self.dead: set[str] = set()  # nodes found dead after a fault
        self.order: dict[tuple, int] = {}
        self._checked = 0.0
        self._silent_since: float | None = None

    # -- the loop
    def run(self) -> Profile:
        total = done = 0
        for sweep in self.sweeps:
            finished = {item_key(sweep.device_id, i, sweep.config) for i in sweep.items} & sweep.done
            for item in sweep.items:
                key = item_key(sweep.device_id, item, sweep.config)
                self.order.setdefault(key, len(self.order))
                if key not in finished:
                    sweep.queue.append(item)
            total, done = total + len(sweep.items), done + len(finished)
        self.started = self.clock()
        self._save()
        with progress(total, self.quiet, initial=done) as bar:
            self.bar = bar
            try:
                self._loop()
            except BaseException:
                for ref in list(self.flights):  # interrupted: what is in flight is measured again by --resume
                    self.executor.cancel(ref)
                raise
        if self.stop:
            raise MeasurementError(f"{self.stop}; the profile so far is saved in {self.path}: continue with "
                                   f"--resume {self.path}")
        return self.profile

    def _loop(self) -> None:
        while True:
            self._check(force=False)
            if self.stop:
                self._abandon_flights()
                return
            self._start()
            if not self.flights:
                if not self._waiting():
                    return
                self._fail_unreachable()
                continue
            now = self.clock()
            wait_s = max(0.0, min(CHECK_EVERY_S, min(f.deadline for f in self.flights.values()) - now))
            try:
                finished = self.executor.wait(list(self.flights), wait_s)
            except Exception as exc:  # the connection is gone
                self.stop = self.executor.lost(exc)
                continue
            for ref in finished:
                self._finish(ref)
            for ref, flight in list(self.flights.items()):
                if ref in self.flights and self.clock() >= flight.deadline:
                    self.flights.pop(ref)
                    self.executor.cancel(ref)
                    self.slots.release(flight.work.sweep.kind.id, flight.node)
                    if not self.executor.node_answers(flight.node):
                        self.dead.add(flight.node.node_id)
                        self.slots.alive.discard(flight.node.node_id)
                    self._fault(flight, "timeout", f"no answer from {self.executor.where(flight.node)} within "
                                                   f"{self.executor.guard_s(flight.work):g} s; the Ray task was "
                                                   "cancelled")

    def _waiting(self) -> bool:
        return any(s.queue or s.peaks for s in self.sweeps) or any(self.retries.values())

    # -- starting
    def _start(self) -> None:
        """On every free node, the next work of its kind: a retry (on a node it has not failed on), the peaks,
        the next item."""
        for sweep in self.sweeps:
            kid = sweep.kind.id
            for work in list(self.retries[kid]):
                if not self.slots.reachable(kid, work.tried):  # its other nodes died meanwhile
                    self.retries[kid].remove(work)
                    self._keep(work.ready.record(work.status, "; then ".join(work.faults)
                                                 + f" (no other alive node of kind {kid} to retry on)",
                                                 {"settings": self.executor.where_settings(work.node)}))
                elif (node := self.slots.pick(kid, work.tried)) is not None:
                    self.retries[kid].remove(work)
                    self._submit(work, node)
            if sweep.peaks and (node := self.slots.pick(kid)) is not None:
                sweep.peaks = False
                self._submit(Work(sweep, None), node)
            while sweep.queue and (node := self.slots.pick(kid)) is not None:
                item = sweep.queue.popleft()
                ready = ready_item(item, sweep.config, sweep.device_id, sweep.device, sweep.artifacts, self.started)
                if isinstance(ready, Record):  # counting or its input failed, or the budget is spent
                    self._keep(ready)
                else:
                    self._submit(Work(sweep, item, ready), node)

    def _submit(self, work: Work, node: Node) -> None:
        self.slots.take(work.sweep.kind.id, node)
        ref = self.executor.submit(work, node)
        self.flights[ref] = Flight(work, node, self.clock() + self.executor.guard_s(work))
        self._postfix()

    # -- finishing
    def _finish(self, ref) -> None:
        flight = self.flights.pop(ref, None)
        if flight is None:
            return
        work, node = flight.work, flight.node
        self.slots.release(work.sweep.kind.id, node)
        status, reason, answer = self.executor.outcome(ref, node)
        if answer is not None:
            if work.item is None:
                set_peaks(self.profile, work.sweep.device_id, answer["peaks"])
                self._save()
            else:
                self._keep(Record.from_dict(answer["record"], where="record measured on a Ray node"))
            return
        if status == "skipped":  # the connection is gone
            self.stop = reason
            self._fault(flight, status, reason, retry=False)
            return
        if not self.executor.node_answers(node):  # it died: no new work there, whatever the GCS says yet
            self.dead.add(node.node_id)
            self.slots.alive.discard(node.node_id)
        self._check(force=True)  # read which nodes are alive before choosing another
        self._fault(flight, status, reason)

    def _fault(self, flight: Flight, status: str, reason: str, retry: bool = True) -> None:
        work, node = flight.work, flight.node
        kid = work.sweep.kind.id
        if work.item is None:  # the peaks: not retried; the profile says why they are missing
            set_peaks(self.profile, work.sweep.device_id, {"error": f"peaks could not be measured: {reason}"})
            self._save()
            return
        work.faults.append(reason)
        work.tried.add(node.node_id)
        work.status, work.node = status, node
        if retry and len(work.faults) == 1 and status != "skipped" and self.slots.reachable(kid, work.tried):
            self.retries[kid].append(work)
            return
        text = "; then ".join(work.faults)
        if len(work.faults) == 1 and status != "skipped":
            text += f" (no other alive node of kind {kid} to retry on)"
        self._keep(work.prepared().record(status, text, settings=self.executor.where_settings(node)))

    def _fail_unreachable(self) -> None:
        """Nothing in flight and nothing can start: every node of the waiting kinds is gone."""
        for sweep in self.sweeps:
            kid = sweep.kind.id
            if self.slots.reachable(kid):
                continue
            why = f"no alive node of kind {kid} is left in the Ray cluster"
            if sweep.peaks:
                sweep.peaks = False
                set_peaks(self.profile, sweep.device_id, {"error": f"peaks could not be measured: {why}"})
            while sweep.queue:
                self._keep(unmeasured(sweep.queue.popleft(), sweep.config, sweep.device_id, "failed", why))
        self._save()
        if self._waiting() and not any(self.slots.pick(s.kind.id) for s in self.sweeps):
            raise RuntimeError("the Ray scheduler cannot place the remaining measurements")  # a bug, not a fault

    def _abandon_flights(self) -> None:
        """The connection is lost: each item in flight becomes ``skipped`` (``--resume`` measures it again)."""
        for ref, flight in list(self.flights.items()):
            self.flights.pop(ref)
            self.slots.release(flight.work.sweep.kind.id, flight.node)
            if flight.work.item is not None:
                self._keep(flight.work.prepared().record("skipped", self.stop,
                                                         settings=self.executor.where_settings(flight.node)))

    # -- the profile
    def _keep(self, record: Record) -> None:
        self.profile.upsert(record)
        self.profile.records.sort(key=lambda r: self.order.get(r.key(), -1))
        self._save()
        self.bar.update(1)
        self._postfix()

    def _save(self) -> None:
        self.profile.save(self.path)

    def _postfix(self) -> None:
        if hasattr(self, "bar"):
            self.bar.set_postfix_str(f"{len(self.flights)} measuring on {self.slots.nodes_busy()} nodes",
                                     refresh=False)

    # -- the cluster
    def _check(self, force: bool) -> None:
        """Every CHECK_EVERY_S (or now): does the GCS answer, and which nodes are alive."""
        now = self.clock()
        if not force and now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        if not self.executor.gcs_answers():
            self._silent_since = self._silent_since or now
            if now - self._silent_since >= lost_after_s():
                self.stop = (f"lost the connection to the Ray cluster: its GCS has not answered for "
                             f"{now - self._silent_since:.0f} s")
            return
        self._silent_since = None
        try:
            self.slots.alive = self.executor.alive_ids() - self.dead
        except Exception as exc:
            self.stop = self.executor.lost(exc)
