"""Export every zoo model (and some scaled ones) to ONNX and count the graph.

For each model: export time (build, BatchNorm calibration and verification excluded),
ONNX Runtime verification, ONNX-graph counting time (median of 3), and whether the graph's
flops/params/acts equal the analytic counts. Exports go to a fresh temporary cache that is
deleted afterwards (``--keep DIR`` keeps them), so export times are never cache hits.

    python bench/bench_export.py                     # all 38 zoo models + scaled ones, fp32, batch 1
    python bench/bench_export.py --models EfficientNet-B0,ResNet-50 --fp16 --no-scaled
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

SCALED = (("EfficientNet-B0", "dWr", 4.0), ("EfficientNet-B0", "w", 0.5), ("RegNetY-400MF", "dWr", 4.0),
          ("RegNetY-4.0GF", "dWr", 4.0), ("RegNetZ-500MF", "dwr", 2.0), ("ResNet-50", "d", 0.5))


def specs(args: argparse.Namespace) -> list:
    import hwprofile as hp

    names = args.models.split(",") if args.models else hp.model_names()
    out = [hp.get_spec(n) for n in names]
    if not args.no_scaled:
        out += [hp.scale(hp.get_spec(b), s, f) for b, s, f in SCALED]
    return out


def bench_one(spec, cache: Path, fp16: bool) -> dict:
    import exporters
    import hwprofile as hp
    from hwprofile.errors import MeasurementError
    from hwprofile.graph import count_onnx

    t = time.perf_counter()
    try:
        art = exporters.to_onnx(spec, batch=1, fp16=fp16, cache_dir=cache, verify=True)
    except MeasurementError as exc:  # verification failed: still count the graph, report the failure
        art = exc.artifact
    total_s = time.perf_counter() - t
    times, cx = [], None
    for _ in range(3):
        t = time.perf_counter()
        cx = count_onnx(art.path)
        times.append(time.perf_counter() - t)
    ref = hp.complexity(spec)
    v = art.verification
    row = {"model": spec.name, "export_s": art.export_s, "total_s": round(total_s, 2),
           "count_s": round(statistics.median(times), 4), "flops": cx.flops, "params": cx.params, "acts": cx.acts,
           "match": (cx.flops, cx.params, cx.acts) == (ref.flops, ref.params, ref.acts),
           "uncounted": cx.uncounted, "verified": v.passed, "rel_err": v.rel_err, "rms_err": v.rms_err,
           "cosine": v.cosine, "file_mb": round(Path(art.path).stat().st_size / 2**20, 1)}
    for f in (Path(art.path), cache / f"{art.cache_key}.json"):
        f.unlink(missing_ok=True)  # keep the disk footprint to one model at a time
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated zoo names (default: the whole zoo)")
    p.add_argument("--no-scaled", action="store_true", help="skip the scaled models")
    p.add_argument("--fp16", action="store_true", help="export fp16 graphs")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    cache = Path(tempfile.mkdtemp(prefix="hwprofile-bench-"))
    rows = []
    print(f"{'model':<34} {'export s':>8} {'total s':>8} {'count s':>8} {'MB':>6}  match  verified (rel/rms/cos)",
          flush=True)
    try:
        for spec in specs(args):
            r = bench_one(spec, cache, args.fp16)
            rows.append(r)
            print(f"{r['model']:<34} {r['export_s']:8.2f} {r['total_s']:8.2f} {r['count_s']:8.4f} {r['file_mb']:6.1f}"
                  f"  {'yes' if r['match'] else 'NO ':5}  {r['verified']} ({r['rel_err']:.2g}/{r['rms_err']:.2g}/"
                  f"{r['cosine']:.6f})", flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    matched = sum(r["match"] for r in rows)
    verified = sum(r["verified"] for r in rows)
    b0 = next((r["count_s"] for r in rows if r["model"] == "EfficientNet-B0"), None)
    print(f"\n{matched}/{len(rows)} graphs count exactly the analytic flops/params/acts; {verified}/{len(rows)} "
          f"reproduce PyTorch on ONNX Runtime CPU; export {sum(r['export_s'] for r in rows):.0f} s in all; "
          f"counting EfficientNet-B0: {b0 if b0 is None else f'{b0 * 1000:.0f} ms'}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if matched == len(rows) and verified == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
