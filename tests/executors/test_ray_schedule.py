"""The fleet's scheduling rule and its plan, as plain bookkeeping (no Ray needed; tests/executors/test_ray.py
runs them on a real local cluster)."""

from __future__ import annotations

import pytest

from hwprofile.errors import ConfigError
from hwprofile.fleet._cluster import DeviceKind, Node
from hwprofile.fleet._ray import check_max_nodes
from hwprofile.fleet._schedule import NodeSlots, lost_after_s
from hwprofile.runners import register_plugin, runner_class
from hwprofile.runners._registry import unregister_runner
from hwprofile.sweep import SweepConfig, fleet_plan, make_plan
from hwprofile.sweep._plan import PEAKS_S, START_S


def _node(name: str, cpus: float = 4, gpus: float = 0) -> Node:
    return Node(name, f"10.0.0.{len(name)}", name, {"CPU": cpus, **({"GPU": gpus} if gpus else {})})


def _kinds():
    a, b, c = _node("a"), _node("b"), _node("c")
    g = _node("g", cpus=8, gpus=2)  # a GPU node, also part of the CPU kind
    cpu = DeviceKind("cpu-x", "cpu", {}, [a, b, c, g])
    gpu = DeviceKind("gpu-y", "cuda", {}, [g])
    return cpu, gpu, (a, b, c, g)


def test_one_measurement_per_node_and_one_per_gpu():
    cpu, gpu, (a, b, c, g) = _kinds()
    slots = NodeSlots([cpu, gpu])
    taken = []
    while (node := slots.pick("cpu-x")) is not None:
        slots.take("cpu-x", node)
        taken.append(node.node_id)
    assert taken == ["a", "b", "c", "g"]  # every node of the kind busy, none twice
    assert slots.pick("gpu-y") is None  # a CPU measurement has its node to itself
    slots.release("cpu-x", g)
    slots.take("gpu-y", slots.pick("gpu-y"))
    assert slots.pick("gpu-y") is g  # its second GPU
    slots.take("gpu-y", g)
    assert slots.pick("gpu-y") is None and slots.pick("cpu-x") is None  # two GPUs busy: no CPU measurement there
    slots.release("gpu-y", g)
    assert slots.pick("cpu-x") is None and slots.pick("gpu-y") is g
    slots.release("gpu-y", g)
    assert slots.pick("cpu-x") is g and slots.nodes_busy() == 3


def test_the_cap_counts_nodes_and_prefers_the_nodes_used_before():
    cpu, gpu, (a, b, c, g) = _kinds()
    slots = NodeSlots([cpu, gpu], max_nodes=1)
    slots.take("cpu-x", c)
    assert slots.pick("cpu-x") is None  # one node measures already
    slots.release("cpu-x", c)
    assert slots.pick("cpu-x") is c  # the node it used before, not the first of the kind
    slots.take("gpu-y", g)
    assert slots.pick("gpu-y") is g  # another GPU of a node it uses does not count as another node


def test_a_retry_avoids_the_node_it_failed_on_and_dead_nodes_are_skipped():
    cpu, gpu, (a, b, c, g) = _kinds()
    slots = NodeSlots([cpu])
    assert slots.pick("cpu-x", {"a"}) is b
    slots.alive -= {"b"}
    assert slots.pick("cpu-x", {"a"}) is c
    assert slots.reachable("cpu-x", {"a", "c", "g"}) is False and slots.reachable("cpu-x", {"a"}) is True


def test_the_fleet_plan_spreads_each_kind_over_its_slots():
    register_plugin("sleep=sleep_runner_plugin:SleepRunner")
    try:
        config = SweepConfig(device="cpu", runners=("sleep",), strategies=("d", "w", "r"), scales=(2.0, 4.0),
                             batch_sizes=(1,))
        plan = make_plan(config)
        assert len(plan.items) == 6
        measuring = sum(i.estimated_s for i in plan.items) + PEAKS_S["cpu"]
        every = fleet_plan([("k", "cpu", [1, 1, 1], plan)])
        (kind,) = every.kinds
        assert (kind.nodes, kind.nodes_used, kind.slots, kind.records) == (3, 3, 3, 6)
        assert kind.measuring_s == pytest.approx(measuring + 3 * START_S["cpu"], abs=0.1)
        assert kind.estimated_s == pytest.approx(kind.measuring_s / 3, abs=0.1)
        capped = fleet_plan([("k", "cpu", [1, 1, 1], plan)], max_nodes=1).kinds[0]
        assert (capped.nodes_used, capped.slots) == (1, 1)
        assert capped.estimated_s == pytest.approx(measuring + START_S["cpu"], abs=0.1)
        assert every.estimated_s == kind.estimated_s  # a spec runner exports nothing
        two = fleet_plan([("k", "cpu", [1, 1, 1], plan), ("g", "cuda", [4], plan)])
        assert two.estimated_s == max(k.estimated_s for k in two.kinds)  # kinds side by side
    finally:
        unregister_runner("sleep")


def test_plugin_runner_errors_name_what_was_expected():
    for text, words in (("sleep", "expected NAME=MODULE:CLASS"), ("sleep=nomodule_xyz:X", "cannot import module"),
                        ("sleep=sleep_runner_plugin:Nope", "has no class 'Nope'"),
                        ("sleep=sleep_runner_plugin:time", "not a subclass"),
                        ("torch:cpu=sleep_runner_plugin:SleepRunner", "built in")):
        with pytest.raises(ConfigError, match=words):
            register_plugin(text)
    try:
        assert register_plugin(" Sleep = sleep_runner_plugin:SleepRunner ") == "sleep"
        assert runner_class("sleep").__name__ == "SleepRunner"
        with pytest.raises(ConfigError, match="already registered"):
            register_plugin("sleep=hwprofile.runners._fake:FakeRunner")
    finally:
        unregister_runner("sleep")


def test_run_rejects_bad_fleet_options_in_one_line(cli, tmp_path):
    for argv, words in ((("--runner-plugin", "oops"), "expected NAME=MODULE:CLASS"),
                        (("--max-nodes", "2"), "--max-nodes needs --executor ray"),
                        (("--executor", "ray", "--max-nodes", "0"), "expected an integer from 1")):
        code, _, err = cli("run", "--out", str(tmp_path / "p.json"), *argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ConfigError, match="expected an integer >= 1"):
        check_max_nodes(0)


def test_the_driver_stops_before_ray_ends_it(monkeypatch):
    monkeypatch.delenv("RAY_gcs_rpc_server_reconnect_timeout_s", raising=False)
    assert lost_after_s() == 10.0
    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "8")
    assert lost_after_s() == 4.0
