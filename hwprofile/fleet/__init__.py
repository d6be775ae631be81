"""The fleet: a sweep's measurements as Ray tasks on the nodes of a Ray cluster that hold the device
(``run --executor ray``, ``devices --ray-address``). Ray is imported when a cluster is reached.

Modules: ``_ray`` (the Ray executor), ``_cluster`` (nodes and device kinds), ``_schedule`` (which node measures
what).
"""

from __future__ import annotations

from hwprofile.fleet._ray import cluster_kinds, plan_on_cluster, run_ray

__all__ = ["cluster_kinds", "plan_on_cluster", "run_ray"]
