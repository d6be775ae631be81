"""Artifact records of exported ONNX graphs and built TensorRT engines, plus the file cache.

Both records are frozen dataclasses with ``to_dict``/``from_dict``; the cache stores each
artifact as ``<key>.<ext>`` beside ``<key>.json`` (its record) and trusts a hit only when
the file's sha256 still matches the record. Nothing here imports torch, onnx or tensorrt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from hwprofile.atomic import ENVIRONMENT_ERRNOS, write_bytes, write_error, write_text
from hwprofile.errors import ConfigError, EnvironmentProblem, HwprofileError, InputFileError

#: Bumped whenever the export recipe changes, so old cache entries are not reused.
EXPORT_RECIPE = 4


@dataclass(frozen=True)
class Verification:
    """ONNX Runtime (CPU) against the fp32 PyTorch module on the same random images.

    Scale-free metrics: ``rel_err`` is max |ort - torch| and ``rms_err`` the root-mean-square
    difference, both divided by the standard deviation of the torch output; ``cosine`` is the
    cosine similarity of the mean-centred outputs. ``tolerance`` holds the bounds applied
    (``rel_err``/``rms_err`` at most, ``cosine`` at least). For fp16 graphs ``noise_floor`` holds
    the same metrics for PyTorch with fp16-rounded weights and activations, from which the
    bounds are derived.
    """

    passed: bool
    rel_err: float
    rms_err: float
    cosine: float
    tolerance: dict
    images: int
    output_std: float
    reference: str  # e.g. "torch fp32"
    reason: str = ""
    noise_floor: dict | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Verification":
        return cls(**{k: v for k, v in d.items() if k in _fields(cls)})


@dataclass(frozen=True)
class OnnxArtifact:
    """An exported ONNX graph: where it is, what it holds, and how it was checked."""

    path: str
    sha256: str
    opset: int
    input_name: str
    input_shape: tuple  # ("batch", 3, H, W) when dynamic, (N, 3, H, W) when fixed
    dtype: str  # float32 | float16
    external_data: str | None  # path of the .data file beside ``path`` (models > 2 GB)
    external_data_sha256: str | None
    versions: dict  # torch, onnx, onnxscript, onnxruntime
    folded_bn: tuple  # names of the BatchNorms the exporter folded into convs
    folded_bn_channels: int  # their total channel count (params added back: 2x this)
    verification: Verification | None
    export_s: float
    model: str  # spec name or module class
    spec: dict | None  # the spec (as in the file's ``hwprofile.spec`` metadata) or None
    cache_key: str = ""
    cache_hit: bool = False

    @property
    def folded_bn_count(self) -> int:
        return len(self.folded_bn)

    @property
    def dynamic_batch(self) -> bool:
        return isinstance(self.input_shape[0], str)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["folded_bn"] = list(self.folded_bn)
        d["folded_bn_count"] = self.folded_bn_count
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "OnnxArtifact":
        d = {k: v for k, v in d.items() if k in _fields(cls)}
        d["input_shape"] = tuple(d["input_shape"])
        d["folded_bn"] = tuple(d["folded_bn"])
        if d.get("verification") is not None:
            d["verification"] = Verification.from_dict(d["verification"])
        return cls(**d)


@dataclass(frozen=True)
class EngineArtifact:
    """A serialized TensorRT engine built from an ONNX artifact."""

    path: str
    sha256: str
    onnx_sha256: str
    tensorrt_version: str
    precision: str  # fp32 | fp16
    input_name: str
    profiles: tuple  # ({"index", "min", "opt", "max"}, ...) shapes of the input per profile
    device_memory_bytes: int | None
    gpu_name: str
    workspace_mb: int
    strongly_typed: bool
    timing_cache: str | None
    build_s: float
    cache_key: str = ""
    cache_hit: bool = False
    profiling_verbosity: str = "layer_names_only"  # "detailed": layers carry their ONNX nodes (per-layer times)

    def profile_for(self, batch: int) -> int:
        """Index of the optimization profile that accepts ``batch`` (the tightest one)."""
        fits = [p for p in self.profiles if p["min"][0] <= batch <= p["max"][0]]
        if not fits:
            sizes = ", ".join(f"{p['min'][0]}-{p['max'][0]}" for p in self.profiles)
            raise ConfigError(f"batch {batch} is outside this engine's profiles ({sizes}); rebuild with it")
        return min(fits, key=lambda p: p["max"][0] - p["min"][0])["index"]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["profiles"] = [dict(p) for p in self.profiles]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EngineArtifact":
        d = {k: v for k, v in d.items() if k in _fields(cls)}
        d["profiles"] = tuple(d["profiles"])
        return cls(**d)


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# ------------------------------------------ files ------------------------------------------ #

def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def key_of(payload: Any) -> str:
    """A short stable hash of a JSON-able payload (the cache key)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_root(kind: str, cache_dir: str | os.PathLike | None) -> Path:
    """``cache_dir`` if given, else ``$HWPROFILE_CACHE/<kind>`` or ``~/.cache/hwprofile/<kind>``, created if
    missing. A folder that cannot be used is one line: exit 2 for ``cache_dir`` (the caller's argument), exit 3
    for the environment's (``$HWPROFILE_CACHE``, ``$HOME``) and for a full disk."""
    if cache_dir is not None:
        error: type[HwprofileError] = InputFileError
        root, where = Path(cache_dir), f"the cache folder {str(cache_dir)!r} (--cache-dir)"
    else:
        env = os.environ.get("HWPROFILE_CACHE")
        try:
            base = Path(env) if env else Path.home() / ".cache" / "hwprofile"
        except RuntimeError:  # no $HOME and no home directory in the password database
            raise EnvironmentProblem("no cache folder: $HOME is not set; set HWPROFILE_CACHE or pass --cache-dir") \
                from None
        root = base / kind
        where = (f"the cache folder {str(root)!r} ($HWPROFILE_CACHE)" if env
                 else f"the cache folder {str(root)!r} (under $HOME)")
        error = EnvironmentProblem
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise write_error(exc, root, "cache folder") from None
        why = "it or a folder above it is not a folder" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
            else (exc.strerror or str(exc))
        raise error(f"cannot use {where}: {why}; set HWPROFILE_CACHE or pass --cache-dir") from None
    if not root.is_dir():
        raise error(f"cannot use {where}: it is not a folder; set HWPROFILE_CACHE or pass --cache-dir")
    return root


def write_json_atomic(path: Path, data: dict) -> None:
    """A cache record, through hwprofile's one atomic writer (cache entries are replaced in place)."""
    write_text(path, json.dumps(data, indent=2, default=str), replace=True, what="cache record")


def write_bytes_atomic(path: Path, data: bytes | memoryview) -> None:
    """A cached file, through hwprofile's one atomic writer (cache entries are replaced in place)."""
    write_bytes(path, bytes(data), replace=True, what="cache file")


def read_record(json_path: Path) -> dict | None:
    """The cached record at ``json_path``, or None when absent or unreadable."""
    try:
        return json.loads(json_path.read_text())
    except (OSError, ValueError):
        return None


def cached_artifact(root: Path, key: str, cls):
    """The artifact cached under ``key`` if its record parses and its file's sha256 still matches, else None."""
    rec = read_record(root / f"{key}.json")
    if rec is None:
        return None
    try:
        art = cls.from_dict(rec)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not _own_file(root, key, art.path, art.sha256):
        return None
    extra = getattr(art, "external_data", None)
    if extra is not None and not _own_file(root, key, extra, getattr(art, "external_data_sha256", None)):
        return None
    return art


def _own_file(root: Path, key: str, path: object, sha256: object) -> bool:
    """Whether ``path`` is a regular file of this cache entry (directly in ``root``, named after ``key``,
    not a link) whose content still has ``sha256``: a record in a writable shared cache cannot point
    an export at any other file."""
    if not isinstance(path, str) or not isinstance(sha256, str):
        return False
    p = Path(path)
    try:
        if p.is_symlink() or not p.is_file() or p.resolve().parent != root.resolve():
            return False
    except (OSError, ValueError):
        return False
    if not p.name.startswith(f"{key}."):
        return False
    try:
        return sha256_file(p) == sha256
    except OSError:
        return False


def library_versions(*names: str) -> dict:
    """Installed versions of ``names`` (None when missing), read without importing them."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
