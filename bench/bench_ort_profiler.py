"""ONNX Runtime's profiler overhead on this machine, side by side with the clean session in one run.

For each round: a clean session alone (warm-up, then timed runs), closed; then a profiled session alone
(``SessionOptions.enable_profiling``; three warm-up runs), closed. One session is alive at a time, as in
``hwprofile layers``. Printed per round and as medians over rounds: the clean run, the profiled run, and the sum
of the profiler's per-node times (``Node`` events ending ``_kernel_time``) in a run, each as a ratio to the
clean run, and the profiler's cost per node. Run it alone: other processes slow single runs.

    python bench/bench_ort_profiler.py                               # EfficientNet-B0, batch 1, 2 threads
    python bench/bench_ort_profiler.py --threads 1 --model RegNetX-200MF --rounds 6 --runs 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="EfficientNet-B0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=60, help="timed runs per session")
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    import exporters
    import hwprofile as hp
    from hwprofile.measure._isolation import cpu_busy_s
    from hwprofile.measure._peaks import _own_cpu_s, foreign_cores

    art = exporters.to_onnx(hp.get_spec(args.model), batch=1, verify=False)
    shape = [d if isinstance(d, int) else 1 for d in ort.InferenceSession(art.path).get_inputs()[0].shape]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)

    def session(tmp: str | None):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if tmp:
            so.enable_profiling, so.profile_file_prefix = True, os.path.join(tmp, "p")
        return ort.InferenceSession(art.path, so, providers=["CPUExecutionProvider"])

    def timed(sess, warm: int) -> list[float]:
        feed = {sess.get_inputs()[0].name: x}
        for _ in range(warm):
            sess.run(None, feed)
        out = []
        for _ in range(args.runs):
            t = time.perf_counter()
            sess.run(None, feed)
            out.append((time.perf_counter() - t) * 1e3)
        return out

    print(f"{args.model} batch 1, onnxruntime {ort.__version__}, {args.threads} intra-op threads, "
          f"{args.rounds} rounds of {args.runs} runs per session, {os.cpu_count()} CPUs")
    rows = []
    for r in range(args.rounds):
        busy0, own0, start = cpu_busy_s(), _own_cpu_s(), time.monotonic()
        sess = session(None)
        clean = statistics.median(timed(sess, 10))
        del sess
        with tempfile.TemporaryDirectory() as tmp:
            sess = session(tmp)
            profiled = statistics.median(timed(sess, 3))
            with open(sess.end_profiling()) as fh:
                events = json.load(fh)
            del sess
        runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
        nodes = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
        per_run = len(nodes) // max(1, len(runs))
        sums = [sum(e["dur"] for e in nodes[i * per_run:(i + 1) * per_run]) / 1e3 for i in range(len(runs))][3:]
        node_sum = statistics.median(sums)
        load = foreign_cores(busy0, own0, time.monotonic() - start)  # hwprofile's own other-load reading
        rows.append((clean, profiled, node_sum, per_run))
        print(f"round {r + 1}: clean {clean:.2f} ms, profiled {profiled:.2f} ms ({profiled / clean - 1:+.1%}), "
              f"node sum {node_sum:.2f} ms ({node_sum / clean - 1:+.1%}), {per_run} nodes a run, "
              f"other load {load if load is not None else float('nan'):.2f} cores")
    clean, profiled, node_sum = (statistics.median(v[i] for v in rows) for i in range(3))
    nodes = rows[0][3]
    print(f"median over rounds: profiled / clean {profiled / clean:.3f}, node sum / clean {node_sum / clean:.3f}; "
          f"profiler cost {(profiled - clean) / nodes * 1e3:.1f} us a node ({nodes} nodes), of which "
          f"{(node_sum - clean) / nodes * 1e3:.1f} us inside the node times (if the nodes covered the whole clean run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
