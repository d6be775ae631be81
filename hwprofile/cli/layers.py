"""``hwprofile layers``: the parser (light: its bounds refuse bad input before anything heavy loads); the
handler, which measures, is :mod:`hwprofile.cli.layers_run`, loaded once the arguments are accepted."""

from __future__ import annotations

import argparse

from hwprofile import bounds
from hwprofile.cli._common import Deferred, int_in
from hwprofile.cli._output import add_format_args
from hwprofile.vocabulary import PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="time every layer of a model on one runner and place it on the roofline",
                       description="Times the model end to end without a profiler, then layer by layer with the "
                                   "runner's profiler in a child of its own (rounds of profiled runs, each alone "
                                   "between two blocks of clean runs: never interleaved), joins every layer to "
                                   "the ONNX nodes it runs and their counts, and classifies it memory- or "
                                   "compute-bound against this device's peaks measured at the runner's thread "
                                   "count.")
    p.add_argument("model", help="zoo name or an .onnx file")
    p.add_argument("--strategy", help="scaling strategy (d w r dw dwr dWr ...); zoo models only")
    p.add_argument("--scale", default=None, help="flops scale factor s (needs --strategy); zoo models only")
    p.add_argument("--runner", required=True, help="ort:cpu, torch:cpu, ort:cuda, torch:cuda, trt, ...")
    p.add_argument("--batch", type=bounds.arg("batch", "--batch"),
                   help="images per batch (default 1; an .onnx file with a fixed batch: that batch)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda:N (default: auto)")
    p.add_argument("--resolution", type=bounds.arg("resolution", "--resolution"),
                   help="image size (default: the spec's training resolution; an .onnx file runs at its "
                        "graph's own input size)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--threads", type=bounds.arg("threads", "--threads"),
                   help="CPU threads of the runner (up to this machine's cores)")
    p.add_argument("--iterations", type=bounds.arg("layer_runs", "--iterations"), default=30,
                   help="profiled runs (default 30; 4 to 1000), after the clean timing (docs/layers.md)")
    p.add_argument("--top", type=int_in(0, 1 << 30, "--top"), default=25,
                   help="table: the N slowest layers (default 25; 0 = all)")
    p.add_argument("--out", help="also save the report as JSON here (never overwritten); plot it with "
                                 "hwprofile plot --roofline")
    p.add_argument("--cache-dir", help="export cache (default ~/.cache/hwprofile)")
    add_format_args(p)
    p.set_defaults(handler=Deferred("layers_run", "run"))
