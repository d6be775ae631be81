"""How a runner's input is made from a sweep item, as the runner declares it (``Runner.input``).

- ``module``: the spec itself (the torch runner builds the module in the measuring child);
- ``onnx``: a verified ONNX graph (``exporters.to_onnx``), or the user's .onnx file as given;
- ``engine``: a TensorRT engine built from that graph (``exporters.to_tensorrt``) with one
  optimization profile per batch size the sweep measures this model at, cached by the exporter's
  key, and built in a child process on the device that will run it (so the sweep's own process
  never holds a CUDA context, and a crashing build is a failed record, not a dead sweep).

Each artifact is made once per sweep (:class:`Artifacts`), also when it failed: a failed export is
the failure of every record that needs it, not a retry per record. What was made, how long it took
and whether it came from a cache is the record's ``prepare`` field; that time is never latency.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from exporters import to_onnx, to_tensorrt
from hwprofile import env
from hwprofile._lazy import heavy
from hwprofile.atomic import write_text
from hwprofile.errors import ConfigError, MeasurementError
from hwprofile.lifetime import die_with_parent, guarded
from hwprofile.profile import Workload
from hwprofile.zoo import spec_to_dict

INPUTS = ("module", "onnx", "engine")
WORKLOAD_KIND = {"module": "spec", "onnx": "onnx", "engine": "engine"}
ENGINE_BUILD_TIMEOUT_S = 1800.0


def prepare_record(input: str, artifact: str | None = None, build_s: float | None = None,
                   cached: bool = False) -> dict:
    """The record's ``prepare`` field: {"input", "artifact", "build_s", "cached"}."""
    if input not in INPUTS:
        raise ValueError(f"runner input {input!r} is not one of {', '.join(INPUTS)}")
    return {"input": input, "artifact": artifact, "build_s": None if build_s is None else round(float(build_s), 3),
            "cached": bool(cached)}


class Artifacts:
    """The exports and engines of one sweep: each made once (and reused from the exporters' disk cache).

    ``batches`` maps a model label to every batch size the sweep measures it at; an engine is built
    for all of them at once (one optimization profile each), so one build serves the whole sweep.
    """

    def __init__(self, cache_dir: str | None = None, batches: dict[str, tuple[int, ...]] | None = None,
                 detailed: bool = False) -> None:
        self.cache_dir = cache_dir
        self.batches = dict(batches or {})
        self.detailed = detailed  # engines with detailed profiling verbosity (a sweep timing layers)
        self._made: dict[tuple, tuple | Exception] = {}

    @classmethod
    def for_items(cls, items, cache_dir: str | None = None, detailed: bool = False) -> "Artifacts":
        batches: dict[str, set[int]] = {}
        for item in items:
            batches.setdefault(item.label, set()).add(int(item.batch))
        return cls(cache_dir, {k: tuple(sorted(v)) for k, v in batches.items()}, detailed)

    def _once(self, key: tuple, make):
        """``make()`` the first time ``key`` is asked for; later: (its value, reused=True), or its error."""
        if key not in self._made:
            try:
                self._made[key] = make()
            except Exception as exc:  # every record needing it fails with this reason
                self._made[key] = exc
            value, fresh = self._made[key], True
        else:
            value, fresh = self._made[key], False
        if isinstance(value, Exception):
            raise value
        return value, fresh

    def onnx(self, item, precision: str) -> tuple[str, dict]:
        """(path, prepare record) of the item's ONNX graph: the user's file, or a verified export."""
        if item.onnx_path:  # the user's file, used as it is: nothing made, nothing cached
            return item.onnx_path, prepare_record("onnx", item.onnx_path)

        def make():
            art = to_onnx(item.spec, batch="dynamic", fp16=precision == "fp16", cache_dir=self.cache_dir)
            return str(art.path), art.export_s, art.cache_hit

        (path, export_s, hit), fresh = self._once(("onnx", item.label, precision), make)
        cached = hit or not fresh
        return path, prepare_record("onnx", path, None if cached else export_s, cached)

    def engine(self, item, precision: str, device: str) -> tuple[str, dict]:
        """(path, prepare record) of a TensorRT engine for the item's graph, built on ``device``."""
        onnx_path, _ = self.onnx(item, precision)
        batches = self.batches.get(item.label) or (int(item.batch),)
        if int(item.batch) not in batches:
            batches = tuple(sorted({*batches, int(item.batch)}))

        def make():
            return build_engine(onnx_path, precision, batches, device, self.engine_cache_dir(),
                                detailed=self.detailed)

        art, fresh = self._once(("engine", item.label, precision, device, batches, self.detailed), make)
        cached = bool(art.get("cache_hit")) or not fresh
        return art["path"], prepare_record("engine", art["path"], None if cached else art.get("build_s"), cached)

    def engine_cache_dir(self) -> str | None:
        return None if self.cache_dir is None else str(Path(self.cache_dir) / "tensorrt")


def build_engine(onnx_path: str, precision: str, batches: tuple[int, ...], device: str,
                 cache_dir: str | None, timeout_s: float = ENGINE_BUILD_TIMEOUT_S, detailed: bool = False) -> dict:
    """Build (or reuse) an engine in a fresh child on ``device``; the EngineArtifact as a dict.

    TensorRT builds for the current CUDA device, so the child selects it first; its result comes
    back as JSON, its failure as an exception with the child's last error line. ``detailed``: with
    detailed profiling verbosity (per-layer times join each layer to its ONNX nodes).
    """
    job = {"onnx": onnx_path, "precision": precision, "batches": list(batches), "device": device,
           "cache_dir": cache_dir, "detailed": bool(detailed),
           "parent_pid": os.getpid()}  # this thread waits for it: PDEATHSIG is safe
    with tempfile.TemporaryDirectory(prefix="hwprofile-engine-") as tmp:
        out = Path(tmp) / "engine.json"
        try:
            proc = subprocess.run(guarded("hwprofile.runners._prepare", json.dumps(job), str(out)),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise MeasurementError(f"the TensorRT engine build did not finish within {timeout_s:g} s") from None
        if proc.returncode != 0 or not out.exists():
            lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
            raise MeasurementError(f"the TensorRT engine build failed (exit {proc.returncode}): "
                                   f"{lines[-1] if lines else 'no message'}"[:300])
        return json.loads(out.read_text())


def _select_device(device: str) -> None:
    """Make ``device`` the current CUDA device before TensorRT builds on it (torch, when it has CUDA)."""
    kind, index = env.parse_device(device)
    if kind != "cuda" or env.torch_cuda_problem() is not None:
        return
    torch = heavy("torch")

    if torch.cuda.is_available():
        torch.cuda.set_device(index or 0)


def _build_main(argv: list[str]) -> int:
    """Child: ``python -m hwprofile.runners._prepare JOB_JSON OUT_JSON``."""
    job, out = json.loads(argv[0]), Path(argv[1])
    die_with_parent(job.get("parent_pid"))  # a killed sweep leaves no engine build running
    _select_device(job["device"])
    art = to_tensorrt(job["onnx"], precision=job["precision"], batch_sizes=job["batches"],
                      cache_dir=job["cache_dir"],
                      profiling_verbosity="detailed" if job.get("detailed") else "layer_names_only")
    write_text(out, json.dumps(art.to_dict()), replace=True, what="engine record")
    return 0


def prepare_input(input: str, item, config, device: str, cache: Artifacts, resolution: int):
    """(Workload, prepare record) of ``item`` for a runner whose input is ``input``."""
    options = config.runner_options(item.runner)
    common = dict(batch=item.batch, resolution=resolution, precision=config.precision, mode=config.mode,
                  options=options)
    if input == "module":
        if item.spec is None:
            raise ConfigError(f"{item.runner} runs torch modules built from a spec, not an ONNX file")
        return Workload(kind="spec", spec=spec_to_dict(item.spec), path=None, **common), prepare_record("module")
    if input == "onnx":
        path, rec = cache.onnx(item, config.precision)
    elif input == "engine":
        path, rec = cache.engine(item, config.precision, device)
    else:
        raise ConfigError(f"{item.runner}: unknown runner input {input!r} (expected {', '.join(INPUTS)})")
    return Workload(kind=WORKLOAD_KIND[input], spec=None, path=path, **common), rec


if __name__ == "__main__":
    try:
        sys.exit(_build_main(sys.argv[1:]))
    except Exception as exc:  # one line for the parent's reason
        text = str(exc).strip().splitlines()
        sys.stderr.write(f"{type(exc).__name__}: {text[0] if text else ''}\n")
        sys.exit(1)
