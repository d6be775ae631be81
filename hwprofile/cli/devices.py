"""``hwprofile devices``: this machine's devices, every runner's availability and why not, versions."""

from __future__ import annotations

import argparse
import sys

from hwprofile import env
from hwprofile.cli._common import csv_list
from hwprofile.cli._output import ALWAYS, Column, Table, add_format_args, emit, num, view_of
from hwprofile.cli._plugins import add_plugin_args, register_plugins
from hwprofile.errors import ConfigError
from hwprofile.fleet import cluster_kinds
from hwprofile.measure import fingerprint, peaks
from hwprofile.runners import RUNNER_NAMES, check_runner_name, get_runner, resolve_device, runner_class


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="devices, runners (available or why not) and library versions")
    p.add_argument("--device", help="check and show one device: auto, cpu or cuda:N (exit 3 if absent)")
    p.add_argument("--runner", help="check runner(s), comma-separated (exit 3 if unavailable)")
    p.add_argument("--peak", action="store_true", help="also measure matmul FLOP/s and copy bandwidth")
    p.add_argument("--ray-address", metavar="ADDR", help="list a Ray cluster's device kinds instead (auto or "
                                                         "IP:PORT): node counts and the runners each kind offers")
    p.add_argument("--accelerator", metavar="TYPE", help="with --ray-address: only GPU nodes of this Ray "
                                                         "accelerator type")
    add_plugin_args(p)
    add_format_args(p)
    p.set_defaults(handler=run)


def ort_warning() -> str | None:
    if env.ort_distributions_clash():
        return ("both onnxruntime and onnxruntime-gpu are installed; they overwrite each other's files: "
                "uninstall both, then install exactly one")
    return None


def _runner_rows(devices: list[str], names: tuple[str, ...]) -> list[dict]:
    rows = []
    for name in names:
        cls = runner_class(name)
        targets = [d for d in devices if d.split(":")[0] == cls.device_type] or (
            ["cpu"] if cls.device_type == "cpu" else ["cuda:0"])
        for device in targets:
            ok, reason = cls.available(device)
            rows.append({"runner": name, "device": device, "available": ok,
                         "version": cls.version_text() if ok else None, "reason": None if ok else
                         reason.partition(" - ")[2], "options": ", ".join(cls.option_names)})
    return rows


def _device_rows(fps: list[dict]) -> list[dict]:
    rows = []
    for fp in fps:
        if fp["kind"] == "gpu":
            g = fp["gpu"]
            detail = ", ".join(f"{k} {g[k]}" for k in ("memory_total_mb", "driver", "cuda_driver", "uuid")
                               if g.get(k))
            rows.append({"device": fp["device"], "id": fp["id"], "name": g.get("name"), "details": detail})
        else:
            c = fp["cpu"]
            rows.append({"device": fp["device"], "id": fp["id"], "name": c["model"],
                         "details": f"{c['logical_cores']} cores, {fp['ram_gb']} GB RAM, {fp['os']['platform']}"})
    return rows


def _peak_rows(peaks: list[dict]) -> list[dict]:
    return [{"device": p["device"], "fp32_gflops": p["matmul_fp32"]["flops_per_s"] / 1e9,
             "fp16_gflops": p["matmul_fp16"]["flops_per_s"] / 1e9 if "matmul_fp16" in p else None,
             "tf32_gflops": p["matmul_tf32"]["flops_per_s"] / 1e9 if "matmul_tf32" in p else None,
             "copy_gb_per_s": p["copy"]["gb_per_s"], "threads": p["threads"]} for p in peaks]


def _check_runners(text: str, devices: list[str]) -> tuple[str, ...]:
    names = tuple(check_runner_name(n) for n in csv_list(text))
    for name in names:
        get_runner(name)  # RunnerUnavailable (exit 3) names what is available
    return names


def ray_kinds(args: argparse.Namespace) -> int:
    if args.device or args.runner or args.peak:
        raise ConfigError("--ray-address lists the cluster's device kinds; --device, --runner and --peak "
                          "describe this machine")
    kinds = cluster_kinds(args.ray_address, args.accelerator)
    rows = [{**k, "addresses": ", ".join(sorted(set(k["addresses"]))), "runners": ", ".join(k["runners"]),
             "accelerators": ", ".join(k["accelerators"]) or None} for k in kinds]
    emit([Table(f"Device kinds of the Ray cluster at {args.ray_address}", (
        Column("kind", "kind (--device)"), Column("device", "device"), Column("nodes", "nodes"),
        Column("addresses", "addresses"), Column("accelerators", "accelerator types"),
        Column("runners", "runners")), rows)], view_of(args), {"ray_address": args.ray_address, "kinds": kinds})
    return 0


def run(args: argparse.Namespace) -> int:
    register_plugins(args)
    if args.ray_address:
        return ray_kinds(args)
    devices = [resolve_device(args.device)] if args.device else ["cpu"] + [f"cuda:{i}" for i in
                                                                           range(env.gpu_count())]
    plugins = tuple(t.partition("=")[0].strip().lower() for t in args.runner_plugin or [])
    names = _check_runners(args.runner, devices) if args.runner else RUNNER_NAMES + plugins
    fps = [fingerprint(d) for d in devices]
    runners = _runner_rows(devices, names)
    warning = ort_warning()
    if warning:
        sys.stderr.write(f"hwprofile: warning: {warning}\n")
    measured = [peaks(d) for d in devices] if args.peak else []
    payload = {"devices": fps, "runners": runners, "warnings": [warning] if warning else [],
               "libraries": fps[0]["libraries"], "peaks": measured}
    tables = [Table("Devices", (Column("device", "device", priority=ALWAYS), Column("id", "id", priority=ALWAYS),
                                Column("name", "name", priority=1), Column("details", "details", wrap=60)),
                    _device_rows(fps), name="devices"),
              Table("Runners", (Column("runner", "runner", priority=ALWAYS), Column("device", "device", priority=3),
                                Column("available", "available", lambda v: "yes" if v else "no", priority=ALWAYS),
                                Column("version", "version", priority=2), Column("options", "options (--option)",
                                                                                   priority=4, wrap=30),
                                Column("reason", "why not", priority=1, wrap=36)), runners,
                    notes=[f"warning: {warning}"] if warning else [], name="runners"),
              Table("Libraries", (Column("name", "library"), Column("version", "version")),
                    [{"name": k, "version": v if not isinstance(v, list) else ", ".join(v) or None}
                     for k, v in fps[0]["libraries"].items()])]
    if measured:
        tables.append(Table("Measured peaks (FLOP/s count 2 per multiply-add)", (
            Column("device", "device"), Column("fp32_gflops", "matmul fp32 GFLOP/s", num),
            Column("fp16_gflops", "matmul fp16 GFLOP/s", num), Column("tf32_gflops", "matmul tf32 GFLOP/s", num),
            Column("copy_gb_per_s", "copy GB/s", num),
            Column("threads", "threads")), _peak_rows(measured)))
    emit(tables, view_of(args), payload)
    return 0
