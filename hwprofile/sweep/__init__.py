"""Sweeps: what a sweep measures (its checked configuration and ordered items), its plan, and running it on
this machine (the local executor) until done or decided; the profile is saved as it goes.

Modules: ``_config`` (SweepConfig and the items), ``_plan`` (``run --plan``), ``_executor`` (the Executor
protocol and its Target), ``_local`` (this machine's executor), ``_run`` (the sweep), ``_decide``
(``run --until-decided``).
"""

from __future__ import annotations

from hwprofile.sweep._config import ORDERS, PARAMS, Item, SweepConfig, check_types, timing_config, validate
from hwprofile.sweep._decide import run_until_decided
from hwprofile.sweep._executor import Target
from hwprofile.sweep._plan import FleetPlan, fleet_plan, make_plan, still_to_measure
from hwprofile.sweep._run import (
    ReadyItem,
    api_config,
    api_path,
    check_new_profile,
    check_remeasure,
    check_resumable,
    check_writable,
    default_out,
    done_keys,
    item_key,
    needs_peaks,
    open_profile,
    progress,
    ready_item,
    run,
    run_sweep,
    set_peaks,
    sigterm_as_interrupt,
    target_items,
    unmeasured,
)

__all__ = [
    "api_config", "api_path", "check_new_profile", "check_remeasure", "check_resumable", "check_types",
    "check_writable", "default_out", "done_keys", "fleet_plan", "FleetPlan", "Item", "item_key", "make_plan",
    "needs_peaks", "open_profile", "ORDERS", "PARAMS", "progress", "ready_item", "ReadyItem", "run", "run_sweep",
    "run_until_decided", "set_peaks", "sigterm_as_interrupt", "still_to_measure", "SweepConfig", "Target",
    "target_items", "timing_config", "unmeasured", "validate"
]
