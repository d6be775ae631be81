"""Real A/A and A/B comparisons of the regression gate on this machine.

Runs the same small sweep in several sessions (A) and in sessions whose runner is slowed by a
known factor (B), interleaved in time (A1 B1 A2 B2 ...), then gates every A/A pair (any
regression is a false alarm) and every A/B pair (a regression is a detection). The slowdown is
injected in the measuring child: ``ort:cpu-slow`` is ORT CPU that spins after each inference for
``slowdown`` times that inference's own duration; its records are relabelled ``ort:cpu`` to join.

    python bench/bench_gate.py                       # 6 A + 3 B sessions, ~3 min on 2 cores
    python bench/bench_gate.py --interleave          # A, A' and B measured in the same rounds, ~6 min
    python bench/bench_gate.py --reuse runs/bench-gate-XXXX   # re-evaluate saved sessions
    python bench/bench_gate.py --simulate            # the synthetic grid behind docs/ci.md
    python bench/bench_gate.py --reuse DIR --calibrate 2   # thresholds calibrated on A/A, cross-validated

Sessions (default): every session measures each record in ``--repeats`` processes back to back;
A/A pairs then differ by whatever changed on the machine between sessions. ``--interleave``:
each trial measures A, A' and B in ``--repeats`` rounds of one process per record (A A' B A A' B),
pooled per arm, so all three see the same machine: what the statistics achieve when the
environment is shared alike (as ``hwprofile check`` arranges for one profile by measuring in rounds).

Prints the false-alarm and detection rates, the A/A spread the default thresholds come from,
and the between-process drift the drift floor comes from.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SLOW_RUNNER = "ort:cpu-slow"


def _slow_runner_class():
    from hwprofile.runners._ort import OrtCpuRunner

    class SlowOrtCpuRunner(OrtCpuRunner):
        """ORT CPU, then a busy wait of ``HWPROFILE_BENCH_SLOWDOWN`` x the inference's own time."""

        name = SLOW_RUNNER
        factor = float(os.environ.get("HWPROFILE_BENCH_SLOWDOWN", "0.15"))

        def infer(self) -> None:
            start = time.perf_counter()
            super().infer()
            until = start + (time.perf_counter() - start) * (1.0 + self.factor)
            while time.perf_counter() < until:
                pass

    return SlowOrtCpuRunner


def __getattr__(name: str):  # the measuring child imports bench_gate:SlowOrtCpuRunner
    if name == "SlowOrtCpuRunner":
        return _slow_runner_class()
    raise AttributeError(name)


# -------------------------------------------------------------------------------- sweeps

def sweep(path: Path, runner: str, args: argparse.Namespace):
    from hwprofile.sweep import SweepConfig, run_sweep

    config = SweepConfig(device="cpu", runners=(runner,), models=tuple(args.models), strategies=("dWr",),
                         scales=tuple(args.scales), batch_sizes=tuple(args.batch_sizes),
                         timing={"repeats": args.repeats, "budget_s": args.seconds},
                         options={"*": {"threads": args.threads}} if args.threads else {})
    profile, _, _ = run_sweep(config, path, quiet=True)
    return profile


def relabel(profile):
    """B sessions: records of the slowed runner, renamed so they join with A's."""
    profile.records = [r.replace(runner="ort:cpu") for r in profile.records]
    return profile


def _register_slow_runner(args: argparse.Namespace) -> None:
    from hwprofile.runners._registry import register_runner

    os.environ["HWPROFILE_BENCH_SLOWDOWN"] = str(args.slowdown)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    register_runner(SLOW_RUNNER, "bench_gate:SlowOrtCpuRunner")


def measure_interleaved(args: argparse.Namespace, out: Path) -> None:
    """Trials of A, A' and B measured in the same rounds, one process per record and round."""
    from hwprofile.analysis import identity, pool_all
    from hwprofile.profile import Profile

    _register_slow_runner(args)
    one = argparse.Namespace(**{**vars(args), "repeats": 1})
    loads = []
    for t in range(args.trials):
        t0 = time.perf_counter()
        loads.append(os.getloadavg()[0])
        arms: dict[str, dict] = {"A": {}, "A2": {}, "B": {}}
        first: dict[str, Profile] = {}
        for rnd in range(args.repeats):
            for arm in arms:
                (out / "rounds").mkdir(exist_ok=True)
                p = sweep(out / "rounds" / f"t{t + 1}-{arm}-r{rnd + 1}.json", SLOW_RUNNER if arm == "B" else "ort:cpu",
                          one)
                first.setdefault(arm, p)
                for r in (relabel(p) if arm == "B" else p).records:
                    arms[arm].setdefault(identity(r), []).append(r)
        for arm, found in arms.items():
            Profile(devices=first[arm].devices, sweeps=first[arm].sweeps,
                    records=[pool_all(rs) for rs in found.values()]).save(out / f"T{t + 1}-{arm}.json")
        print(f"trial {t + 1}: A, A', B in {args.repeats} rounds in {time.perf_counter() - t0:.0f} s "
              f"(load average {loads[-1]:.2f} at start)", flush=True)
    (out / "conditions.json").write_text(json.dumps({"mode": "interleave", "load_average_at_trial_start": loads,
                                                     "cpu_count": os.cpu_count()}))


def evaluate_interleaved(out: Path, config) -> dict:
    from hwprofile.gate._decide import evaluate as gate
    from hwprofile.profile import Profile

    aa, ab = [], []
    for a in sorted(out.glob("T*-A.json")):
        trial = a.name.split("-")[0]
        base = Profile.load(a).records
        aa.append(gate(base, Profile.load(out / f"{trial}-A2.json").records, config))
        ab.append(gate(base, Profile.load(out / f"{trial}-B.json").records, config))
    return _rates(aa, ab)


def measure_sessions(args: argparse.Namespace, out: Path) -> None:
    _register_slow_runner(args)
    order = [("A", i) for i in range(args.sessions_a)]
    for i in range(args.sessions_b):  # interleave: A1 B1 A2 B2 ...
        order.insert(2 * i + 1, ("B", i))
    loads = []
    for kind, i in order:
        t0 = time.perf_counter()
        loads.append(os.getloadavg()[0])
        raw = out / f"{kind}{i + 1}{'-raw' if kind == 'B' else ''}.json"
        p = sweep(raw, SLOW_RUNNER if kind == "B" else "ort:cpu", args)
        if kind == "B":
            relabel(p).save(out / f"B{i + 1}.json")
        ok = sum(r.ok for r in p.records)
        print(f"session {kind}{i + 1}: {ok}/{len(p.records)} ok in {time.perf_counter() - t0:.0f} s "
              f"(load average {loads[-1]:.2f} at start)", flush=True)
    (out / "conditions.json").write_text(json.dumps({"mode": "sessions", "load_average_at_session_start": loads,
                                                     "cpu_count": os.cpu_count()}))


# ---------------------------------------------------------------------------- evaluation

def load_sessions(out: Path):
    """(A profiles, B profiles): sessions A1.. and B1.., or the interleaved trials' T*-A / T*-B."""
    from hwprofile.profile import Profile

    a = [Profile.load(p) for p in sorted([*out.glob("A*.json"), *out.glob("T*-A.json")])]
    b = [Profile.load(p) for p in sorted([*out.glob("B*.json"), *out.glob("T*-B.json")])
         if not p.name.endswith("-raw.json")]
    return a, b


def between_process_sd(profiles) -> float:
    """Pooled sd of log per-process medians around each record's mean (drift inside a session)."""
    from hwprofile.analysis._compare import process_medians_ms

    dev, dof = 0.0, 0
    for p in profiles:
        for r in p.ok_records():
            logs = np.log(process_medians_ms(r))
            if len(logs) >= 2:
                dev += float(((logs - logs.mean()) ** 2).sum())
                dof += len(logs) - 1
    return math.sqrt(dev / dof) if dof else math.nan


def evaluate(a, b, config) -> dict:
    from hwprofile.gate._decide import evaluate as gate

    aa = [gate(x.records, y.records, config) for x, y in itertools.combinations(a, 2)]
    ab = [gate(x.records, y.records, config) for x in a for y in b]
    return _rates(aa, ab)


def _rates(aa, ab) -> dict:
    lat = lambda results: [v for r in results for v in r.verdicts if v.metric == "latency"]  # noqa: E731
    aa_v, ab_v = lat(aa), lat(ab)
    aa_log = [abs(math.log(v.ratio)) for v in aa_v if v.ratio]
    return {
        "aa_comparisons": len(aa), "aa_records": len(aa_v),
        "false_alarms": sum(v.status == "regression" for v in aa_v),
        "aa_gate_failures": sum(r.exit_code == 1 for r in aa),
        "aa_suspects": sum(v.status == "suspect" for v in aa_v),
        "aa_abs_ratio_p50": math.expm1(float(np.percentile(aa_log, 50))) if aa_log else None,
        "aa_abs_ratio_p95": math.expm1(float(np.percentile(aa_log, 95))) if aa_log else None,
        "aa_abs_ratio_max": math.expm1(max(aa_log)) if aa_log else None,
        "ab_comparisons": len(ab), "ab_records": len(ab_v),
        "detections": sum(v.status == "regression" for v in ab_v),
        "ab_gate_failures": sum(r.exit_code == 1 for r in ab),
        "ab_ratio_geomean": math.exp(float(np.mean([math.log(v.ratio) for v in ab_v]))) if ab_v else None,
    }


def report(a, b, args: argparse.Namespace) -> dict:
    from hwprofile.gate import DRIFT_FLOOR
    from hwprofile.gate._decide import DEFAULT_THRESHOLDS, GateConfig

    config = GateConfig(confidence=args.confidence)
    if args.interleave:
        res = evaluate_interleaved(args.reuse_dir, config)
    else:
        res = evaluate(a, b, config)
    res["between_process_sd"] = between_process_sd(a + b)
    res["threshold"] = DEFAULT_THRESHOLDS["cpu"]["latency"]
    res["drift_floor"] = DRIFT_FLOOR["cpu"]
    res["false_alarm_rate"] = res["false_alarms"] / max(res["aa_records"], 1)
    res["detection_rate"] = res["detections"] / max(res["ab_records"], 1)
    res["sessions"] = {"A": len(a), "B": len(b)}
    cond = args.reuse_dir / "conditions.json"
    res["conditions"] = json.loads(cond.read_text()) if cond.exists() else None
    res["records_per_session"] = len(a[0].records) if a else 0
    res["processes"] = sorted({r.latency.repeats for p in a for r in p.ok_records() if r.latency})
    print(f"\nA/A: {res['aa_comparisons']} comparisons, {res['aa_records']} record comparisons: "
          f"{res['false_alarms']} false alarms ({res['false_alarm_rate']:.1%}), {res['aa_suspects']} suspects, "
          f"{res['aa_gate_failures']} failing gates")
    if res["aa_records"]:
        print(f"     |ratio - 1|: median {res['aa_abs_ratio_p50']:.1%}, p95 {res['aa_abs_ratio_p95']:.1%}, "
              f"max {res['aa_abs_ratio_max']:.1%}")
    print(f"between-process sd of log latency inside a session: {res['between_process_sd']:.1%}")
    if res["ab_records"]:
        print(f"A/B: injected +{args.slowdown:.0%}, measured {res['ab_ratio_geomean']:.3f}x; {res['ab_comparisons']} "
              f"comparisons, {res['ab_records']} record comparisons: {res['detections']} detected "
              f"({res['detection_rate']:.1%}), {res['ab_gate_failures']} failing gates")
    print(f"(cpu latency threshold {res['threshold']:.0%}, drift floor {res['drift_floor'][0]:.1%} "
          f"(one process: {res['drift_floor'][1]:.1%}), "
          f"confidence {args.confidence:.0%})")
    return res


# ----------------------------------------------------------------------------- calibrated

def evaluate_calibrated(a, b, k: int, confidence: float) -> dict:
    """What ``check --calibrate`` achieves on these sessions, cross-validated: every A session in
    turn is the baseline, k of the other A sessions (each cyclic window in turn) calibrate its
    thresholds, the remaining A sessions are gated against it (A/A) and so are the B sessions (A/B)."""
    from hwprofile.gate._calibration import observe, thresholds
    from hwprofile.gate._decide import GateConfig
    from hwprofile.gate._decide import evaluate as gate

    if len(a) < k + 2:
        raise SystemExit(f"--calibrate {k} needs at least {k + 2} A sessions (have {len(a)})")
    aa, ab, chosen = [], [], []
    for i, base in enumerate(a):
        others = a[:i] + a[i + 1:]
        for j in range(len(others)):
            window = [others[(j + n) % len(others)] for n in range(k)]
            held = [o for o in others if not any(o is w for w in window)]
            cal = thresholds([observe(base.records, w.records, confidence=confidence) for w in window])
            config = GateConfig(confidence=confidence, calibrated=cal)
            chosen.append(config.threshold("latency", "ort:cpu"))
            aa += [gate(base.records, h.records, config) for h in held]
            ab += [gate(base.records, x.records, config) for x in b]
    res = _rates(aa, ab)
    res.update(calibration_sessions=k, calibrations=len(chosen),
               threshold_median=float(np.median(chosen)), threshold_min=min(chosen), threshold_max=max(chosen))
    return res


def report_calibrated(a, b, args: argparse.Namespace) -> dict:
    res = evaluate_calibrated(a, b, args.calibrate, args.confidence)
    fa, det = res["false_alarms"] / max(res["aa_records"], 1), res["detections"] / max(res["ab_records"], 1)
    print(f"\ncalibrated on {args.calibrate} A/A sessions ({res['calibrations']} cross-validated calibrations): "
          f"latency threshold median {res['threshold_median']:.0%} (range {res['threshold_min']:.0%}-"
          f"{res['threshold_max']:.0%})")
    print(f"A/A on held-out sessions: {res['false_alarms']} false alarms in {res['aa_records']} records ({fa:.1%}), "
          f"{res['aa_gate_failures']} of {res['aa_comparisons']} gates failed")
    if res["ab_records"]:
        print(f"A/B (+{args.slowdown:.0%} injected): {res['detections']} of {res['ab_records']} records detected "
              f"({det:.1%}), {res['ab_gate_failures']} of {res['ab_comparisons']} gates failed")
    return {**res, "false_alarm_rate": fa, "detection_rate": det}


# ---------------------------------------------------------------------------- simulation

def simulate(args: argparse.Namespace) -> list[dict]:
    """Rates on synthetic data (tests/data/profiles/make_profiles.py) over drift, processes, re-measuring."""
    from hwprofile.analysis import identity
    from hwprofile.gate._decide import GateConfig, evaluate_with_remeasure
    from hwprofile.profile import Record

    spec = importlib.util.spec_from_file_location("make_profiles", ROOT / "tests/data/profiles/make_profiles.py")
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)

    def recs(seed, slow, drift, k):
        return [Record.from_dict(r) for r in mp.profile(seed, slowdown=slow, drift=drift, processes=k)["records"]]

    def again(seed, slow, drift, k):
        return lambda ids: [r for r in recs(seed, slow, drift, k) if identity(r) in ids]

    rows, config = [], GateConfig(confidence=args.confidence, n_boot=1000)
    for (name, drift), k, re in itertools.product(
            [("sd 2.1% (max/min-1 ~5% over 5)", mp.DRIFT), ("sd 3.5% (~8%)", 0.035), ("sd 5%", 0.05)],
            [1, 3, 5], [0, 5]):
        fa = det = n = 0
        for i in range(args.trials):
            aa, _ = evaluate_with_remeasure(recs(10_000 + i, 1, drift, k), recs(20_000 + i, 1, drift, k), config,
                                            again(30_000 + i, 1, drift, k) if re else None)
            ab, _ = evaluate_with_remeasure(recs(40_000 + i, 1, drift, k), recs(50_000 + i, 1.15, drift, k), config,
                                            again(60_000 + i, 1.15, drift, k) if re else None)
            fa += len(aa.having("regression"))
            det += len(ab.having("regression"))
            n += len(aa.verdicts)
        rows.append({"drift": name, "processes": k, "remeasure": re, "records": n,
                     "false_alarms": fa, "detection_rate": det / n})
        print(f"drift {name:32s} processes {k}  remeasure {re}:  false alarms {fa}/{n}  "
              f"detected {det / n:.1%} of a 15% slowdown", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions-a", type=int, default=6)
    ap.add_argument("--sessions-b", type=int, default=3)
    ap.add_argument("--slowdown", type=float, default=0.15, help="injected slowdown of B (default 0.15)")
    ap.add_argument("--models", nargs="+", default=["RegNetX-200MF", "EfficientNet-B0"])
    ap.add_argument("--scales", nargs="+", type=float, default=[1.0, 2.0])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1])
    ap.add_argument("--repeats", type=int, default=3, help="processes per record (default 3)")
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per process (default 1)")
    ap.add_argument("--threads", type=int, help="ORT intra-op threads (default: physical cores)")
    ap.add_argument("--confidence", type=float, default=0.90)
    ap.add_argument("--reuse", type=Path, help="evaluate the sessions saved in this folder again")
    ap.add_argument("--interleave", action="store_true", help="trials of A, A' and B measured in the same rounds")
    ap.add_argument("--simulate", action="store_true", help="synthetic grid instead of measuring")
    ap.add_argument("--calibrate", type=int, metavar="K", help="(sessions mode) also evaluate thresholds "
                                                               "calibrated on K A/A sessions, cross-validated")
    ap.add_argument("--trials", type=int, help="trials (--interleave, default 5) or comparisons per cell "
                                                "(--simulate, default 40)")
    args = ap.parse_args()
    args.trials = args.trials or (40 if args.simulate else 5)
    if args.simulate:
        simulate(args)
        return 0
    out = args.reuse or ROOT / "runs" / time.strftime("bench-gate-%Y%m%d-%H%M%S")
    if args.reuse:
        cond = out / "conditions.json"
        args.interleave = args.interleave or (cond.exists()
                                              and json.loads(cond.read_text()).get("mode") == "interleave")
    else:
        out.mkdir(parents=True)
        what = (f"{args.trials} interleaved trials" if args.interleave else
                f"{args.sessions_a} A + {args.sessions_b} B sessions")
        print(f"{what} in {out}: +{args.slowdown:.0%} injected in B, {args.repeats} processes per record, "
              f"{args.seconds:g} s each", flush=True)
        (measure_interleaved if args.interleave else measure_sessions)(args, out)
    a, b = load_sessions(out)
    args.reuse_dir = out
    res = report(a, b, args)
    if args.calibrate and not args.interleave:
        res["calibrated"] = report_calibrated(a, b, args)
    (out / "summary.json").write_text(json.dumps(res, indent=1))
    print(f"summary: {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
