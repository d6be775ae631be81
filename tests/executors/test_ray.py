"""The Ray executor against a real local Ray: one simulated four-node cluster shared by the module.

Nodes (``ray.cluster_utils.Cluster``, all on this machine): a head with 1 CPU and three workers with
1 CPU and the custom resource ``hwprofile:big``. The fingerprints are alike (one machine), so the
cluster has two device kinds: ``<cpu id>`` (the head) and ``<cpu id>@big`` (the three workers).
Measurements use the scripted fake runner (registered on the driver; the executor registers it on
the nodes) or the sleeping plugin runner (tests/sleep_runner_plugin.py, shipped to the nodes as a
plugin), so they take a known time, and the tests time scheduling, not hardware.

The test that kills a node, and the one that kills the cluster's GCS, come last: they use the
cluster up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from hwprofile.analysis import comparability  # noqa: E402
from hwprofile.fleet import _ray as rayx  # noqa: E402
from hwprofile.fleet._cluster import plugin_modules  # noqa: E402
from hwprofile.measure import fingerprint  # noqa: E402
from hwprofile.profile import Profile  # noqa: E402
from hwprofile.runners import _fake as fake  # noqa: E402
from hwprofile.runners import register_plugin  # noqa: E402
from hwprofile.runners._registry import register_runner, unregister_runner  # noqa: E402
from hwprofile.sweep import SweepConfig, run_sweep  # noqa: E402
from hwprofile.sweep._config import FINAL  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
#: a real local Ray cluster of three nodes (about 20 s to start) and multi-node sweeps: the slow part of the suite
pytestmark = pytest.mark.slow

TIMING = {"budget_s": 0.05, "warmup_s": 0.0, "warmup_iters": 1, "min_iters": 3, "throughput_window_s": 0.01}
BASE = dict(models=("EfficientNet-B0",), scales=(1.0,), batch_sizes=(1,), timing=TIMING, retries=0)
PLUGIN = "sleep=sleep_runner_plugin:SleepRunner"
#: the plugin runner's sweep: 12 scaled models (6 strategies x 2 scales), batch 1, one runner
SLEEP = ("--runner-plugin", PLUGIN, "--runners", "sleep", "--strategies", "d,w,r,dw,dr,wr", "--scales", "2,4",
         "--batch-sizes", "1", "--order", "planned", "--retries", "0", "--no-peaks", "--quiet", "--format", "json")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    register_runner("fake", fake.PATH)
    register_runner("fake2", fake.PATH)
    register_plugin(PLUGIN)  # before connecting: the connection ships the plugin's module to the nodes
    temp = tempfile.mkdtemp(prefix="hwr", dir="/tmp")  # not /tmp/ray: `--ray-address auto` stays untouched
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "temp_dir": temp})
    try:
        workers = [c.add_node(num_cpus=1, resources={"hwprofile:big": 1}) for _ in range(3)]
        c.wait_for_nodes()
        assert rayx.connect(c.address) is True
        yield {"head": c.head_node.node_id, "big": {w.node_id for w in workers}, "cluster": c, "workers": workers,
               "address": c.address}
    finally:
        ray.shutdown()
        c.shutdown()
        unregister_runner("fake")
        unregister_runner("fake2")
        unregister_runner("sleep")
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def kinds(cluster):
    return {k.id: k for k in rayx.discover()}


def _here() -> str:
    return fingerprint("cpu")["id"]


def _sweep(cli, address: str, out: Path, *extra: str) -> tuple[int, str]:
    """``hwprofile run`` of the plugin runner's 12-item sweep on the @big nodes, through the real CLI."""
    code, _, err = cli("run", "--executor", "ray", "--ray-address", address, "--device", f"{_here()}@big",
                       "--out", str(out), *SLEEP, *extra)
    return code, err


def _plan_order(records) -> list[tuple]:
    return [(r.strategy, r.scale) for r in records]


PLAN_ORDER = [(st, s) for s in (2.0, 4.0) for st in ("d", "w", "r", "dw", "dr", "wr")]


@pytest.mark.slow  # the sweep, twice: 12 items of 2 s on one node, then on three (~1 min)
def test_twelve_items_on_three_nodes_take_at_most_45_percent_of_the_time_on_one(cluster, kinds, cli, tmp_path):
    big = f"{_here()}@big"
    # Each node's Ray worker starts and preloads its measuring fork server before either sweep is timed: on
    # one simulated machine three cold starts at once share the same two cores, which real nodes do not.
    warm = SweepConfig(device=big, runners=("sleep",), strategies=("d", "w", "r"), scales=(2.0,),
                       batch_sizes=(1,), options={"sleep": {"seconds": 0.1}}, retries=0)
    prof, _, _ = run_sweep(warm, tmp_path / "warm.json", quiet=True, peaks=False,
                           executor=rayx.RayExecutor(kinds=list(kinds.values())))
    assert {r.settings.node for r in prof.records} == cluster["big"]  # three free nodes: one item each

    walls = {}
    for name, extra, nodes in (("one", ("--max-nodes", "1"), "1 node"), ("three", (), "3 nodes")):
        start = time.monotonic()
        code, err = _sweep(cli, cluster["address"], tmp_path / f"{name}.json", *extra)
        walls[name] = time.monotonic() - start
        assert code == 0, err
        assert f"{big}: 12 records measured on {nodes} (" in err, err
    print(f"wall time: {walls['one']:.1f} s on one node, {walls['three']:.1f} s on three "
          f"({walls['three'] / walls['one']:.0%})")
    assert walls["three"] <= 0.45 * walls["one"], walls

    one, three = Profile.load(tmp_path / "one.json"), Profile.load(tmp_path / "three.json")
    for prof in (one, three):
        keys = [r.key() for r in prof.records]
        assert len(keys) == 12 == len(set(keys)) and all(r.ok for r in prof.records)  # each saved once
        assert _plan_order(prof.records) == PLAN_ORDER  # in the sweep's order, whatever order they finished in
        assert all(r.settings.system_check and r.quality for r in prof.records)  # the local rules, on the node
    assert len({r.settings.node for r in one.records}) == 1
    assert {r.settings.node for r in three.records} == cluster["big"]


def test_resume_measures_exactly_the_records_a_budget_left_out(cluster, cli, tmp_path):
    out = tmp_path / "budget.json"
    code, err = _sweep(cli, cluster["address"], out, "--option", "sleep.seconds=0.3", "--budget", "1")
    assert code == 0, err
    first = {r.key(): r for r in Profile.load(out).records}
    ok = {k for k, r in first.items() if r.ok}
    assert len(first) == 12 and ok and len(ok) < 12
    assert {r.status for k, r in first.items() if k not in ok} == {"skipped"}

    code, _, err = cli("run", "--executor", "ray", "--ray-address", cluster["address"], "--resume", str(out),
                       "--runner-plugin", PLUGIN, "--order", "planned", "--no-peaks", "--retries", "0", "--quiet",
                       "--format", "json")
    assert code == 0, err
    again = Profile.load(out).records
    assert len(again) == 12 == len({r.key() for r in again}) and all(r.ok for r in again)
    assert _plan_order(again) == PLAN_ORDER
    for r in again:  # the records measured before are kept as they were; only the skipped ones were measured
        if r.key() in ok:
            assert r.to_dict() == first[r.key()].to_dict()
        else:
            assert r.measured_utc >= max(first[k].measured_utc for k in ok)


def test_plan_estimates_the_wall_time_per_kind_and_node_count(cluster, cli, tmp_path):
    here = _here()
    argv = ("run", "--plan", "--executor", "ray", "--ray-address", cluster["address"], "--device", "all",
            "--runner-plugin", PLUGIN, "--runners", "sleep", "--strategies", "d,w,r,dw,dr,wr", "--scales", "2,4",
            "--batch-sizes", "1", "--format", "json")
    plans = {}
    for cap in (None, 1):
        code, out, err = cli(*argv, *(("--max-nodes", str(cap)) if cap else ()))
        assert code == 0, err
        plans[cap] = {k["kind"]: k for k in json.loads(out)["kinds"]}
    every, capped = plans[None][f"{here}@big"], plans[1][f"{here}@big"]
    assert (every["nodes"], every["nodes_used"], every["slots"], every["records"]) == (3, 3, 3, 12)
    assert (capped["nodes"], capped["nodes_used"], capped["slots"]) == (3, 1, 1)
    assert plans[None][here]["nodes"] == 1 and plans[None][here]["records"] == 12
    assert every["estimated_s"] == pytest.approx(every["measuring_s"] / 3, rel=0.01)
    assert capped["estimated_s"] == pytest.approx(capped["measuring_s"], rel=0.01)
    assert capped["estimated_s"] > 2.5 * every["estimated_s"]
    assert not list(tmp_path.iterdir())  # a plan measures and writes nothing


def test_fleet_groups_nodes_by_kind_and_schedules_each_kind_on_its_nodes(cluster, kinds, tmp_path):
    here = _here()
    assert set(kinds) == {here, f"{here}@big"}
    assert {n.node_id for n in kinds[here].nodes} == {cluster["head"]}
    assert {n.node_id for n in kinds[f"{here}@big"].nodes} == cluster["big"]
    assert "fake" in kinds[here].runners and "fake" in kinds[f"{here}@big"].runners
    assert "sleep" in kinds[here].runners  # the plugin, imported on the node from the module shipped there

    config = SweepConfig(device="all", runners=("fake",), **BASE)
    executor = rayx.RayExecutor(kinds=list(kinds.values()))
    prof, path, notes = rayx.run_fleet(config, tmp_path / "fleet.json", quiet=True, executor=executor)
    loaded = Profile.load(path)
    assert set(loaded.devices) == {here, f"{here}@big"}  # one multi-device profile
    assert {s["device_id"] for s in loaded.sweeps} == set(loaded.devices)
    by_dev = {r.device_id: r for r in loaded.records}
    assert len(loaded.records) == 2 and all(r.ok for r in loaded.records)
    assert by_dev[here].settings.node == cluster["head"]
    assert by_dev[f"{here}@big"].settings.node in cluster["big"]
    assert all(r.settings.executor == "ray" for r in loaded.records)
    # each device entry keeps the fingerprint measured on one of its own nodes, and its peaks measured there
    assert loaded.device(f"{here}@big").fingerprint()["ray"]["node_id"] in cluster["big"]
    assert loaded.device(here).fingerprint()["cpu"]["model"] == fingerprint("cpu")["cpu"]["model"]
    for kind in (here, f"{here}@big"):
        assert loaded.device(kind).peaks["copy"]["gb_per_s"] > 0, loaded.device(kind).peaks
    # resuming the finished fleet measures nothing again, the peaks included
    again, _, _ = rayx.run_fleet(config, path, resume=True, quiet=True, executor=executor)
    assert [r.measured_utc for r in again.records] == [r.measured_utc for r in loaded.records]
    assert again.device(here).peaks == loaded.device(here).peaks


def test_devices_lists_the_kinds_node_counts_and_runners(cluster, cli):
    here = _here()
    code, out, _ = cli("devices", "--ray-address", cluster["address"], "--format", "json")
    kinds = {k["kind"]: k for k in json.loads(out)["kinds"]}
    assert code == 0 and set(kinds) == {here, f"{here}@big"}
    assert (kinds[here]["nodes"], kinds[f"{here}@big"]["nodes"]) == (1, 3)
    assert set(kinds[f"{here}@big"]["node_ids"]) == cluster["big"]
    assert "fake" in kinds[here]["runners"] and kinds[here]["device"] == "cpu"


def test_the_plugins_module_travels_with_the_tasks(cluster):
    assert plugin_modules() == [str(ROOT / "tests" / "sleep_runner_plugin.py")]


def test_ray_tasks_get_the_thread_environment_of_a_local_run(cluster):
    """Ray sets OMP_NUM_THREADS to a task's CPUs; torch takes its thread count from it (issue 26, item 6)."""
    from hwprofile.fleet._cluster import node_environment

    @ray.remote
    def inside() -> tuple:
        before = os.environ.get("OMP_NUM_THREADS")
        with node_environment():
            during = os.environ.get("OMP_NUM_THREADS")
        return before, during, os.environ.get("OMP_NUM_THREADS")

    for cpus in (1, 0.5):  # a CPU task on a 1-CPU node; a GPU task's share of a CPU
        assert ray.get(inside.options(num_cpus=cpus).remote()) == ("1", None, "1")
    # a worker that starts with the variable set (the node's own environment) keeps it
    set_here = inside.options(num_cpus=1, runtime_env={"env_vars": {"OMP_NUM_THREADS": "3"}})
    assert ray.get(set_here.remote()) == ("3", "3", "3")


def test_a_ray_sweep_gives_the_records_of_a_local_sweep(cluster, kinds, tmp_path):
    here = _here()
    options = {"fake": {"latencies_ms": [2.0, 3.0]}, "fake2": {"fault": "raise"}}
    runners = ("fake", "fake2", "torch:cpu")  # torch:cpu: a real runner whose thread count comes from the process
    local = SweepConfig(device="cpu", runners=runners, options=options, **BASE)
    lp, _, _ = run_sweep(local, tmp_path / "local.json", quiet=True, peaks=False)
    remote = SweepConfig(device=here, runners=runners, options=options, **BASE)
    rp, _, _ = run_sweep(remote, tmp_path / "ray.json", quiet=True, peaks=False,
                         executor=rayx.RayExecutor(kinds=list(kinds.values())))
    lrec, rrec = lp.by_key(), rp.by_key()
    assert set(lrec) == set(rrec) and len(lrec) == 3
    for key in lrec:
        a, b = lrec[key].to_dict(), rrec[key].to_dict()
        # the same fields; quality_reasons is there only for a record graded noisy or disturbed, which on a
        # loaded machine (CI) either sweep's real torch record may be
        assert a.keys() - {"quality_reasons"} == b.keys() - {"quality_reasons"}
        assert (a["status"], a["reason"]) == (b["status"], b["reason"])
        assert (a["latency"] or {}).keys() == (b["latency"] or {}).keys()
        assert a["memory"].keys() == b["memory"].keys()
        # the same settings, the system check before the measurement included; a Ray record also says where
        assert set(b["settings"]) - set(a["settings"]) == {"node_address", "node_hostname"}, key
        assert set(a["settings"]) <= set(b["settings"])
        assert (a["settings"]["executor"], b["settings"]["executor"]) == ("local", "ray")
        assert b["settings"]["node"] == cluster["head"]
    assert {r.status for r in rp.records} == {"ok", "failed"}
    ok = next(r for r in rp.records if r.ok and r.runner == "fake")
    assert ok.latency.median_ms in (2.0, 2.5, 3.0)  # the scripted latencies, measured on the node
    # the torch records took the same number of threads, so nothing refuses the comparison
    torch_key = next(k for k in lrec if k[5] == "torch:cpu")
    assert lrec[torch_key].settings.threads == rrec[torch_key].settings.threads
    side = type("Side", (), {"device_id": here, "fingerprint": lp.device(here).fingerprint()})
    refused = [m for m in comparability(side, side, [(lrec[k], rrec[k]) for k in lrec if lrec[k].ok])
               if m.severity == "refuse"]
    assert not refused, [m.text() for m in refused]


def test_a_disturbed_record_is_measured_again_on_its_node(cluster, kinds, tmp_path):
    config = SweepConfig(device=_here(), runners=("fake",), options={"fake": {"latencies_ms": [1.0, 10.0]}},
                         **{**BASE, "retries": 1}, retry_backoff_s=0.1)
    prof, _, _ = run_sweep(config, tmp_path / "disturbed.json", quiet=True, peaks=False,
                           executor=rayx.RayExecutor(kinds=list(kinds.values())))
    (rec,) = prof.records
    settings = rec.settings.to_dict()
    assert rec.ok and rec.quality == "disturbed" and any("latency CV" in q for q in rec.quality_reasons)
    assert len(settings["quality_attempts"]) == 1  # measured twice on the node: once more after the back-off
    assert settings["system_check"]["window_s"] > 0 and settings["node"] == cluster["head"]


def _measuring_workers() -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if cmd.startswith(f"ray::{rayx.TASK_NAME}"):
            found.append(proc)
    return found


def _kill_measurements(count: int, deadline_s: float, killed: list) -> None:
    """SIGKILL the Ray workers running hwprofile measurements, one after the other, as they appear."""
    import psutil

    end = time.monotonic() + deadline_s
    while len(killed) < count and time.monotonic() < end:
        for proc in _measuring_workers():
            if proc.pid in killed:
                continue
            try:
                children = proc.children(recursive=True)
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
                for child in children:  # the fork server and its measuring child
                    child.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        time.sleep(0.1)


def test_a_killed_task_is_retried_on_another_node_then_recorded(cluster, kinds, tmp_path):
    here = _here()
    config = SweepConfig(device=f"{here}@big", runners=("fake",), options={"fake": {"fault": "hang"}},
                         timeout_s=90.0, **BASE)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_measurements, args=(2, 120.0, killed), daemon=True)
    killer.start()
    prof, path, _ = run_sweep(config, tmp_path / "killed.json", quiet=True, peaks=False,
                              executor=rayx.RayExecutor(kinds=list(kinds.values())))
    killer.join(timeout=5)
    (rec,) = Profile.load(path).records
    assert len(killed) == 2
    assert rec.status == "crashed"
    assert rec.reason.count("the Ray task was killed on node") == 2 and "; then " in rec.reason
    assert rec.settings.executor == "ray" and rec.settings.node in cluster["big"]


def _remove_a_measuring_node(cluster, state: dict, deadline_s: float = 120.0) -> None:
    """Once a worker node runs a measurement, remove it from the cluster for good (its raylet, object store
    and worker processes, killed without a goodbye); ``state["node"]`` names it."""
    import psutil

    raylets = {w.all_processes["raylet"][0].process.pid: w for w in cluster["workers"]}
    end = time.monotonic() + deadline_s
    while "node" not in state and time.monotonic() < end:
        for proc in _measuring_workers():
            try:
                node = next((raylets[p.pid] for p in proc.parents() if p.pid in raylets), None)
                leftovers = [proc] + proc.children(recursive=True) if node is not None else []
            except psutil.Error:
                continue
            if node is not None:
                state["node"] = node.node_id
                cluster["cluster"].remove_node(node, allow_graceful=False)
                for left in leftovers:  # the dead node's worker and its fork server, if still there
                    try:
                        left.send_signal(signal.SIGKILL)
                    except psutil.Error:
                        pass
                return
        time.sleep(0.05)


def _wait_for_a_record(path: Path, deadline_s: float = 180.0, still=lambda: True) -> None:
    """Until the profile at ``path`` holds a record (while ``still()``)."""
    end = time.monotonic() + deadline_s
    while still() and time.monotonic() < end:
        try:
            if Profile.load(path).records:
                return
        except Exception:  # not written yet
            pass
        time.sleep(0.05)


def test_killing_one_of_three_nodes_mid_sweep_loses_and_duplicates_nothing(cluster, cli, tmp_path):
    out = tmp_path / "kill.json"
    state: dict = {}

    def kill_once_a_record_is_saved():
        _wait_for_a_record(out)  # mid-sweep
        _remove_a_measuring_node(cluster, state)

    killer = threading.Thread(target=kill_once_a_record_is_saved, daemon=True)
    killer.start()
    code, err = _sweep(cli, cluster["address"], out, "--option", "sleep.seconds=0.5")
    killer.join(timeout=10)
    assert code == 0, err
    dead = state.get("node")
    assert dead in cluster["big"], state
    records = Profile.load(out).records
    assert len(records) == 12 == len({r.key() for r in records})  # none lost, none twice
    assert _plan_order(records) == PLAN_ORDER
    assert all(r.status in FINAL for r in records), [(r.status, r.reason) for r in records]  # ok or failed
    # the item the dead node was measuring was measured again on another node of its kind
    retried = [r for r in records if r.settings.to_dict().get("ray_retried_after")]
    assert retried and all(r.ok and r.settings.node in cluster["big"] - {dead} for r in retried)
    assert any(dead[:12] in r.settings.to_dict()["ray_retried_after"][0] for r in retried)
    assert {r.settings.node for r in records if r.ok} <= cluster["big"]


# ------------------------------------------------------------------------ connecting, no cluster needed

def _hwprofile(*argv: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwprofile", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return {**env, "HOME": str(home), "PYTHONPATH": str(ROOT), "RAY_gcs_server_port_wait_time_s": "2"}


RUN = ("run", "--executor", "ray", "--device", "cpu", "--runners", "ort:cpu", "--scales", "1", "--batch-sizes", "1")


def test_an_explicit_address_without_the_token_is_one_line_exit_3(tmp_path):
    """A real head with token authentication (on when the head finds a token) in its own temp dir and session."""
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="hwr", dir="/tmp")  # Ray's socket paths must stay short
    head_home = tmp_path / "head-home"
    head_home.mkdir()
    ray_bin = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", "--port", str(port), "--num-cpus", "0",
                             "--include-dashboard=false", "--temp-dir", temp, "--disable-usage-stats"],
                            env={**_env(head_home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from ray._private.services import get_node_ip_address

        address = f"{get_node_ip_address()}:{port}"
        end = time.monotonic() + 60
        while time.monotonic() < end:  # the GCS port answers once the head is up
            try:
                socket.create_connection(tuple(address.rsplit(":", 1)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        client_home = tmp_path / "client-home"
        client_home.mkdir()
        res = _hwprofile(*RUN, "--ray-address", address, "--out", str(tmp_path / "p.json"), env=_env(client_home))
        assert res.returncode == 3, res.stderr
        assert res.stderr.count("\n") == 1 and "authentication token" in res.stderr
        assert "Traceback" not in res.stderr and not (tmp_path / "p.json").exists()
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the head and every process it started (GCS, raylet, ...)
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_unreachable_cluster_and_missing_ray_are_one_line_exit_3(tmp_path):
    res = _hwprofile(*RUN, "--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "p.json"), env=_env(tmp_path))
    assert res.returncode == 3 and res.stderr.count("\n") == 1 and "cannot reach the Ray cluster" in res.stderr
    code = ("import sys; sys.modules['ray'] = None; from hwprofile.cli import main; "
            f"sys.exit(main({list(RUN) + ['--out', str(tmp_path / 'q.json')]!r}))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True)
    assert res.returncode == 3 and res.stderr == "hwprofile: error: --executor ray needs Ray: pip install " \
                                                 "-e \".[ray]\"\n"  # from this checkout: its own extra


def test_a_lost_connection_saves_what_was_in_flight_as_skipped_and_exits_3(cluster, tmp_path):
    """Last: it kills the cluster's GCS. The driver is the real CLI in a process of its own, and this process
    leaves the cluster first (Ray ends a driver whose GCS stays away)."""
    ray.shutdown()
    out = tmp_path / "lost.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "RAY_gcs_rpc_server_reconnect_timeout_s": "30"}  # Ray's own limit; hwprofile stops at half of it
    driver = subprocess.Popen([sys.executable, "-m", "hwprofile", "run", "--executor", "ray", "--ray-address",
                               cluster["address"], "--device", _here(), "--out", str(out), *SLEEP,
                               "--option", "sleep.seconds=1"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_a_record(out, still=lambda: driver.poll() is None)  # mid-sweep
        saved = {r.key(): r.to_dict() for r in Profile.load(out).records}
        assert saved and driver.poll() is None
        cluster["cluster"].head_node.all_processes["gcs_server"][0].process.kill()
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 3, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("hwprofile: error: lost the connection to the Ray cluster") and f"--resume {out}" in err
    records = Profile.load(out).records
    assert len(records) == len({r.key() for r in records}) <= 12
    assert all(r.ok for r in records if r.key() in saved)  # what was saved before stays
    skipped = [r for r in records if r.status == "skipped"]  # the item in flight: --resume measures it again
    assert len(skipped) == 1 and "lost the connection" in skipped[0].reason
    assert all(r.ok or r.status == "skipped" for r in records)
