"""The Ray executor against a real local Ray: one simulated three-node cluster shared by the module.

Nodes (``ray.cluster_utils.Cluster``, all on this machine): a head with 1 CPU and two workers with
1 CPU and the custom resource ``hwprofile:big``. The fingerprints are alike (one machine), so the
cluster has two device kinds: ``<cpu id>`` (the head) and ``<cpu id>@big`` (both workers).
Measurements use the scripted fake runner (registered on the driver; the executor registers it on
the nodes), so each takes well under a second once its node's fork server is up.
"""

from __future__ import annotations

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

from hwprofile.executors import ray as rayx  # noqa: E402
from hwprofile.measure.fingerprint import fingerprint  # noqa: E402
from hwprofile.profile import Profile  # noqa: E402
from hwprofile.runners import fake, register_runner, unregister_runner  # noqa: E402
from hwprofile.sweep import SweepConfig, run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIMING = {"budget_s": 0.05, "warmup_s": 0.0, "warmup_iters": 1, "min_iters": 3, "throughput_window_s": 0.01}
BASE = dict(models=("EfficientNet-B0",), scales=(1.0,), batch_sizes=(1,), timing=TIMING)


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    register_runner("fake", fake.PATH)
    register_runner("fake2", fake.PATH)
    temp = tempfile.mkdtemp(prefix="hwr", dir="/tmp")  # not /tmp/ray: `--ray-address auto` stays untouched
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "temp_dir": temp})
    try:
        workers = [c.add_node(num_cpus=1, resources={"hwprofile:big": 1}) for _ in range(2)]
        c.wait_for_nodes()
        assert rayx.connect(c.address) is True
        yield {"head": c.head_node.node_id, "big": {w.node_id for w in workers}, "cluster": c, "workers": workers,
               "address": c.address}
    finally:
        ray.shutdown()
        c.shutdown()
        unregister_runner("fake")
        unregister_runner("fake2")
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def kinds(cluster):
    return {k.id: k for k in rayx.discover()}


def _here() -> str:
    return fingerprint("cpu")["id"]


def test_fleet_groups_nodes_by_kind_and_schedules_each_kind_on_its_nodes(cluster, kinds, tmp_path):
    here = _here()
    assert set(kinds) == {here, f"{here}@big"}
    assert {n.node_id for n in kinds[here].nodes} == {cluster["head"]}
    assert {n.node_id for n in kinds[f"{here}@big"].nodes} == cluster["big"]
    assert "fake" in kinds[here].runners and "fake" in kinds[f"{here}@big"].runners

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
    # each device entry keeps the fingerprint measured on one of its own nodes
    assert loaded.device(f"{here}@big").fingerprint()["ray"]["node_id"] in cluster["big"]
    assert loaded.device(here).fingerprint()["cpu"]["model"] == fingerprint("cpu")["cpu"]["model"]
    # resuming the finished fleet measures nothing again
    again, _, _ = rayx.run_fleet(config, path, resume=True, quiet=True, executor=executor)
    assert [r.measured_utc for r in again.records] == [r.measured_utc for r in loaded.records]


def test_devices_lists_the_kinds_node_counts_and_runners(cluster, cli):
    import json

    here = _here()
    code, out, _ = cli("devices", "--ray-address", cluster["address"], "--format", "json")
    kinds = {k["kind"]: k for k in json.loads(out)["kinds"]}
    assert code == 0 and set(kinds) == {here, f"{here}@big"}
    assert (kinds[here]["nodes"], kinds[f"{here}@big"]["nodes"]) == (1, 2)
    assert set(kinds[f"{here}@big"]["node_ids"]) == cluster["big"]
    assert "fake" in kinds[here]["runners"] and kinds[here]["device"] == "cpu"


def test_a_ray_sweep_gives_the_records_of_a_local_sweep(cluster, kinds, tmp_path):
    here = _here()
    options = {"fake": {"latencies_ms": [2.0, 3.0]}, "fake2": {"fault": "raise"}}
    local = SweepConfig(device="cpu", runners=("fake", "fake2"), options=options, **BASE)
    lp, _, _ = run_sweep(local, tmp_path / "local.json", quiet=True)
    remote = SweepConfig(device=here, runners=("fake", "fake2"), options=options, **BASE)
    rp, _, _ = run_sweep(remote, tmp_path / "ray.json", quiet=True,
                         executor=rayx.RayExecutor(kinds=list(kinds.values())))
    lrec, rrec = lp.by_key(), rp.by_key()
    assert set(lrec) == set(rrec) and len(lrec) == 2
    for key in lrec:
        a, b = lrec[key].to_dict(), rrec[key].to_dict()
        assert a.keys() == b.keys()
        assert (a["status"], a["reason"]) == (b["status"], b["reason"])
        assert (a["latency"] or {}).keys() == (b["latency"] or {}).keys()
        assert a["memory"].keys() == b["memory"].keys()
        # the pre-measurement system check reads the driver's machine, so only local records carry it
        assert set(a["settings"]) - {"executor", "node", "system_check", "gpu_watch", "quality_attempts"} \
            <= set(b["settings"])
        assert (a["settings"]["executor"], b["settings"]["executor"]) == ("local", "ray")
        assert b["settings"]["node"] == cluster["head"]
    assert {r.status for r in rp.records} == {"ok", "failed"}
    ok = next(r for r in rp.records if r.ok)
    assert ok.latency.median_ms in (2.0, 2.5, 3.0)  # the scripted latencies, measured on the node


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
    prof, path, _ = run_sweep(config, tmp_path / "killed.json", quiet=True,
                              executor=rayx.RayExecutor(kinds=list(kinds.values())))
    killer.join(timeout=5)
    (rec,) = Profile.load(path).records
    assert len(killed) == 2
    assert rec.status == "crashed"
    assert rec.reason.count("the Ray task was killed on node") == 2 and "; then " in rec.reason
    assert rec.settings.executor == "ray" and rec.settings.node in cluster["big"]


def test_a_node_that_dies_mid_task_is_retried_on_another_node(cluster, kinds, tmp_path):
    """Runs last among the cluster tests: it removes one of the two ``@big`` workers for good."""
    here = _here()
    config = SweepConfig(device=f"{here}@big", runners=("fake",), options={"fake": {"fault": "hang"}},
                         timeout_s=90.0, **BASE)
    raylets = {w.all_processes["raylet"][0].process.pid: w for w in cluster["workers"]}
    state: dict = {}

    def kill_node_then_worker():
        import psutil

        end, killed = time.monotonic() + 120, []
        while "node" not in state and time.monotonic() < end:
            for proc in _measuring_workers():
                node = next((raylets[p.pid] for p in proc.parents() if p.pid in raylets), None)
                if node is not None:
                    state["node"] = node.node_id
                    leftovers = [proc] + proc.children(recursive=True)
                    cluster["cluster"].remove_node(node, allow_graceful=False)
                    for left in leftovers:  # the dead node's worker and its fork server, if still there
                        try:
                            left.send_signal(signal.SIGKILL)
                        except psutil.Error:
                            pass
                    killed.append(proc.pid)
                    break
            time.sleep(0.1)
        _kill_measurements(2, 120.0, killed)  # then the retry, on the other worker node
        state["killed"] = killed

    killer = threading.Thread(target=kill_node_then_worker, daemon=True)
    killer.start()
    _, path, _ = run_sweep(config, tmp_path / "node.json", quiet=True,
                           executor=rayx.RayExecutor(kinds=list(kinds.values())))
    killer.join(timeout=10)
    (rec,) = Profile.load(path).records
    assert state.get("node") in cluster["big"] and len(state.get("killed", [])) == 2
    assert rec.status == "crashed" and "; then " in rec.reason
    first, _, second = rec.reason.partition("; then ")
    assert state["node"][:12] in first and state["node"][:12] not in second
    assert rec.settings.node in cluster["big"] - {state["node"]}


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
