"""PyTorch -> ONNX with torch's dynamo exporter, verified on ONNX Runtime CPU, cached.

``to_onnx(spec_or_module)`` builds (a spec) or copies (a module) the network, calibrates its
BatchNorms on random batches so its outputs are well-scaled, exports it with
``torch.onnx.export(dynamo=True, optimize=True)`` to one file (external data beside it only
past protobuf's 2 GB), records in the file's metadata which convs absorbed a BatchNorm or
lost an all-zero bias (so ``count_onnx`` reproduces the analytic counts) and what spec it is,
checks it with ``onnx.checker``, and compares ONNX Runtime with PyTorch. Re-exporting the same
spec/module with the same settings and library versions returns the cached file.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporters.artifacts import (
    EXPORT_RECIPE,
    OnnxArtifact,
    cache_root,
    cached_artifact,
    key_of,
    library_versions,
    sha256_file,
    write_json_atomic,
)
from exporters.bn_calibration import calibrate_bn
from exporters.bn_folding import annotate, conv_layers, fold_bn
from exporters.verify import verify_onnx
from hwprofile._lazy import heavy
from hwprofile.atomic import copy_file
from hwprofile.errors import ConfigError, InputFileError, MeasurementError
from hwprofile.zoo import MAX_BATCH, AnyNetSpec, EffNetSpec, get_spec, spec_to_dict

#: Models whose weights exceed this many bytes are saved with external data (protobuf: 2 GiB).
EXTERNAL_DATA_BYTES = 2_000_000_000
LIBRARIES = ("torch", "onnx", "onnxscript", "onnxruntime")
#: The opset when none is asked for: the dynamo exporter's default (20), which is also the highest the
#: TorchScript exporter writes. Graphs under 2 GB at opsets up to this one go through the TorchScript exporter
#: (5-8x faster than dynamo here, the same fused graph: docs/export.md); the rest through dynamo.
TS_OPSET = 20
INPUT_NAME, OUTPUT_NAME = "input", "output"


@dataclass(frozen=True)
class _Job:
    """What to export: a spec or a module, at an input shape, with export settings."""

    name: str
    spec: Any
    module: Any
    input_shape: tuple[int, int, int]
    batch: Any  # "dynamic" | int
    fp16: bool
    opset: int | None
    calibrate: bool
    seed: int

    @property
    def dtype(self) -> str:
        return "float16" if self.fp16 else "float32"

    def spec_dict(self) -> dict | None:
        if self.spec is None:
            return None
        return spec_to_dict(self.spec)

    def key(self) -> str:
        what = {"spec": self.spec_dict()} if self.spec is not None else {"module": _module_identity(self.module)}
        return key_of({**what, "input_shape": self.input_shape, "batch": self.batch, "dtype": self.dtype,
                       "opset": self.opset, "calibrate": self.calibrate, "seed": self.seed,
                       "recipe": EXPORT_RECIPE, "versions": library_versions(*LIBRARIES)})


def _module_identity(module: Any) -> dict:
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {"class": f"{type(module).__module__}.{type(module).__qualname__}", "repr": repr(module),
            "state_sha256": h.hexdigest()}


# --------------------------------------------- public --------------------------------------------- #

def to_onnx(model_or_spec: Any, path: str | os.PathLike | None = None, *, batch: Any = "dynamic",
            fp16: bool = False, opset: int | None = None, cache_dir: str | os.PathLike | None = None,
            verify: bool = True, input_shape: tuple[int, ...] | None = None, calibrate: bool | None = None,
            overwrite: bool = False, seed: int = 0) -> OnnxArtifact:
    """Export a spec (zoo or scaled), zoo name, or ``nn.Module`` (with ``input_shape`` (C, H, W)).

    ``batch`` is ``"dynamic"`` or a fixed size; ``fp16`` exports an fp16 graph (fp16 input and
    output); ``calibrate`` (default: yes for specs, no for modules, which may be trained)
    calibrates BatchNorm statistics on random batches first. The file lives in the cache
    (``cache_dir``, else ``$HWPROFILE_CACHE/onnx`` or ``~/.cache/hwprofile/onnx``); with ``path``
    it is also copied there (an existing different file is an error unless ``overwrite``).
    Verification failure raises :class:`MeasurementError`; a cache hit reuses the record.
    """
    job = _job(model_or_spec, batch, fp16, opset, input_shape, calibrate, seed)
    dest = None if path is None else _check_dest(Path(path))
    root = cache_root("onnx", cache_dir)
    key = job.key()
    art = _cache_hit(root, key)
    if dest is not None and not overwrite and dest.exists() and not _same_file(dest, art):
        raise ConfigError(f"{dest} exists; choose another name or pass --force to replace it")
    if art is None or (verify and art.verification is None):
        art = _export(job, root, key, verify)
    if verify and (art.verification is None or not art.verification.passed):
        why = art.verification.reason if art.verification is not None else "no verification was recorded"
        err = MeasurementError(f"{job.name}: the ONNX graph does not reproduce PyTorch on ONNX Runtime CPU "
                               f"({why}); kept at {art.path}")
        err.artifact = art  # the failed artifact, for callers that report rather than stop
        raise err
    return art if dest is None else _publish(art, dest, overwrite)


def _job(model_or_spec: Any, batch: Any, fp16: bool, opset: int | None, input_shape: Any,
         calibrate: bool | None, seed: int) -> _Job:
    batch = _check_batch(batch)
    if opset is not None and (not isinstance(opset, int) or opset < 7):
        raise ConfigError(f"opset must be an integer >= 7, got {opset!r}")
    spec = get_spec(model_or_spec) if isinstance(model_or_spec, str) else model_or_spec
    if isinstance(spec, (AnyNetSpec, EffNetSpec)):
        shape = (3, spec.train_res, spec.train_res)
        return _Job(spec.name, spec, None, shape, batch, bool(fp16), opset,
                    True if calibrate is None else calibrate, seed)
    torch = heavy("torch")

    if not isinstance(model_or_spec, torch.nn.Module):
        raise ConfigError(f"expected a model spec, zoo name or torch.nn.Module, got {type(model_or_spec).__name__}")
    if input_shape is None or len(input_shape) not in (3, 4) or any(int(d) < 1 for d in input_shape):
        raise ConfigError(f"a module needs input_shape=(C, H, W), got {input_shape!r}")
    channels, height, width = (int(d) for d in input_shape[-3:])
    return _Job(type(model_or_spec).__name__, None, model_or_spec, (channels, height, width), batch, bool(fp16),
                opset, bool(calibrate), seed)


def _check_batch(batch: Any) -> Any:
    if batch == "dynamic":
        return batch
    try:
        n = int(batch)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(n) != str(batch).strip():
        raise ConfigError(f"batch must be 'dynamic' or a positive integer, got {batch!r}")
    if n > MAX_BATCH:
        raise ConfigError(f"batch {n} is too large: the limit is {MAX_BATCH} (docs/profiles.md)")
    return n


# ---------------------------------------------- cache ---------------------------------------------- #

def _cache_hit(root: Path, key: str) -> OnnxArtifact | None:
    art = cached_artifact(root, key, OnnxArtifact)
    if art is None:
        return None
    if art.external_data and (not Path(art.external_data).is_file()
                              or sha256_file(art.external_data) != art.external_data_sha256):
        return None
    return dataclasses.replace(art, cache_hit=True)


def _check_dest(dest: Path) -> Path:
    if dest.suffix.lower() != ".onnx":
        raise ConfigError(f"{dest}: the output file name must end in .onnx")
    if not dest.parent.is_dir():
        raise ConfigError(f"{dest.parent}: no such folder")
    return dest


def _same_file(dest: Path, art: OnnxArtifact | None) -> bool:
    return art is not None and art.external_data is None and dest.is_file() and sha256_file(dest) == art.sha256


def _publish(art: OnnxArtifact, dest: Path, overwrite: bool) -> OnnxArtifact:
    """Copy the cached file to ``dest`` (never replacing a different file unless ``overwrite``)."""
    if dest.exists() and not overwrite and not _same_file(dest, art):
        raise ConfigError(f"{dest} exists; choose another name or pass --force to replace it")
    if art.external_data:
        return _publish_external(art, dest, overwrite)
    copy_file(art.path, dest, replace=overwrite or dest.exists(), what="ONNX file")
    if sha256_file(dest) != art.sha256:
        raise ConfigError(f"{dest}: the copied file does not match the cached export's sha256")
    return dataclasses.replace(art, path=str(dest))


def _publish_external(art: OnnxArtifact, dest: Path, overwrite: bool) -> OnnxArtifact:
    onnx = heavy("onnx")

    data = dest.with_name(dest.name + ".data")
    if data.exists() and not overwrite:
        raise ConfigError(f"{data} exists; choose another name or pass --force to replace it")

    model = onnx.load(art.path)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        staged = Path(tmp) / dest.name
        onnx.save(model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=data.name)
        copy_file(Path(tmp) / data.name, data, replace=overwrite, what="ONNX external data")
        copy_file(staged, dest, replace=overwrite or dest.exists(), what="ONNX file")
    return dataclasses.replace(art, path=str(dest), sha256=sha256_file(dest), external_data=str(data),
                               external_data_sha256=sha256_file(data))


# --------------------------------------------- export --------------------------------------------- #

def _torch_model(job: _Job) -> Any:
    """The fp32 eval-mode module to export: built from the spec (seeded) or a copy of the module."""
    torch = heavy("torch")

    with torch.random.fork_rng():
        torch.manual_seed(job.seed)
        model = heavy("hwprofile.models").build(job.spec) if job.spec is not None else copy.deepcopy(job.module)
    model = model.float().eval()
    if job.calibrate:
        calibrate_bn(model, job.input_shape, seed=job.seed)
    return model


def _export(job: _Job, root: Path, key: str, verify: bool) -> OnnxArtifact:
    model = _torch_model(job)
    layers = conv_layers(model, job.input_shape)
    start = time.perf_counter()
    final = root / f"{key}.onnx"
    tmp = root / f".{key}.{os.getpid()}.tmp.onnx"
    try:
        external = _param_bytes(model, job.fp16) > EXTERNAL_DATA_BYTES
        _run_exporter(job, fold_bn(model, layers).half() if job.fp16 else model, tmp, external)
        opset = _finish(job, tmp, final, layers, external)
    finally:
        for p in (tmp, Path(f"{tmp}.data"), final.with_name(f".{final.name}.{os.getpid()}.part")):
            p.unlink(missing_ok=True)
    export_s = time.perf_counter() - start
    folded = tuple(e["bn"] for e in layers if e.get("bn") and e.get("folded"))
    data = Path(f"{final}.data") if external else None
    verification = (verify_onnx(str(final), model, job.input_shape, input_name=INPUT_NAME, dtype=job.dtype,
                                batch=3 if job.batch == "dynamic" else job.batch) if verify else None)
    c, h, w = job.input_shape
    art = OnnxArtifact(
        path=str(final), sha256=sha256_file(final), opset=opset, input_name=INPUT_NAME,
        input_shape=("batch" if job.batch == "dynamic" else job.batch, c, h, w), dtype=job.dtype,
        external_data=str(data) if data else None, external_data_sha256=sha256_file(data) if data else None,
        versions=library_versions(*LIBRARIES), folded_bn=folded,
        folded_bn_channels=sum(e["channels"] for e in layers if e.get("folded")),
        verification=verification, export_s=round(export_s, 3), model=job.name, spec=job.spec_dict(),
        cache_key=key, cache_hit=False)
    if verification is None or verification.passed:
        write_json_atomic(root / f"{key}.json", art.to_dict())
    return art


def _param_bytes(model: Any, fp16: bool) -> int:
    return sum(p.numel() for p in model.parameters()) * (2 if fp16 else 4)


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's progress prints, warnings and logs."""
    names = ("torch.onnx", "torch.export", "torch._export", "onnxscript", "torch._dynamo")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _run_exporter(job: _Job, model: Any, tmp: Path, external: bool) -> None:
    torch = heavy("torch")

    net = model
    n = 2 if job.batch == "dynamic" else job.batch
    x = torch.randn(n, *job.input_shape, generator=torch.Generator().manual_seed(job.seed))
    x = x.half() if job.fp16 else x
    dynamic = ({0: "batch"},) if job.batch == "dynamic" else None
    try:
        with _quiet():
            if external or (job.opset or TS_OPSET) > TS_OPSET:  # past protobuf's 2 GB (one external-data
                #                              file) or past the TorchScript exporter's opsets: the dynamo exporter
                torch.onnx.export(net, (x,), str(tmp), dynamo=True, external_data=external, optimize=True,
                                  opset_version=job.opset, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  dynamic_shapes=dynamic)
            else:  # the TorchScript exporter: 5-8x faster, the same fused graph (docs/export.md)
                torch.onnx.export(net, (x,), str(tmp), dynamo=False, opset_version=job.opset or TS_OPSET,
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
                                  if job.batch == "dynamic" else None,
                                  do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    except Exception as exc:
        if job.spec is not None:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"torch.onnx could not export {job.name}: {first}") from None


def _finish(job: _Job, tmp: Path, final: Path, layers: list[dict], external: bool) -> int:
    """Check the opset, add hwprofile's metadata, save to ``final`` and run the checker."""
    onnx = heavy("onnx")

    model = onnx.load(str(tmp), load_external_data=True)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if job.opset is not None and opset != job.opset:
        raise ConfigError(f"torch's exporter produced opset {opset}, not the {job.opset} asked for "
                          f"(torch's exporters write opsets 7-{TS_OPSET}, and 18 and above past 2 GB)")
    annotate(model, layers, job.spec_dict())
    part = final.with_name(f".{final.name}.{os.getpid()}.part")
    if external:
        data = Path(f"{final}.data")
        data.unlink(missing_ok=True)
        onnx.save(model, str(part), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
    else:
        onnx.save(model, str(part))
    os.replace(part, final)
    try:
        onnx.checker.check_model(str(final))
    except onnx.checker.ValidationError as exc:
        raise InputFileError(f"{job.name}: the exported graph fails onnx.checker: {exc}") from None
    return opset


def prepared_model(model_or_spec: Any, *, input_shape: tuple[int, ...] | None = None,
                   calibrate: bool | None = None, seed: int = 0) -> Any:
    """The fp32 eval-mode module exactly as :func:`to_onnx` exports it (seeded build, calibrated BN)."""
    return _torch_model(_job(model_or_spec, "dynamic", False, None, input_shape, calibrate, seed))
