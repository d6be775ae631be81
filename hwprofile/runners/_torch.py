"""Eager PyTorch runners (``torch:cpu``, ``torch:cuda``) on hwprofile-built models.

``infer``: ``model.eval()`` forward under ``no_grad``. ``train``: forward + cross-entropy on random
labels + backward, no optimizer step, BatchNorm running statistics restored on ``close`` (pycls's
``compute_time_train`` protocol, science.md 4.1). fp16: a half model for infer, autocast for train.
Options: threads, channels_last, compile (``torch.compile``), cuda_graphs (torch:cuda infer), seed.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from hwprofile import env
from hwprofile._lazy import heavy, not_installed
from hwprofile.profile import typical_times
from hwprofile.runners._base import (
    COMMON_BOOKKEEPING_SETTINGS,
    COMMON_OBSERVED_SETTINGS,
    COMMON_RESULT_SETTINGS,
    Runner,
    Unsupported,
)
from hwprofile.trackers.memory import MB, entry
from hwprofile.vocabulary import MODES
from hwprofile.zoo import spec_from_dict


class TorchRunner(Runner):
    kinds = ("spec",)
    input = "module"
    modes = MODES
    option_names = ("threads", "channels_last", "compile", "cuda_graphs", "seed")
    result_settings = {
        **COMMON_RESULT_SETTINGS, "library": "backend", "torch_version": "backend version",
        "interop_threads": "thread setting", "precision_mode": "precision",
        "channels_last": "memory format", "options.channels_last": "memory format",
        "compile": "setting", "options.compile": "setting", "cuda_graphs": "setting", "options.cuda_graphs": "setting",
        # torch:cuda (_cuda_settings): CUDA and cuDNN builds, the cuDNN autotuner, fp32 as TF32
        "cuda_version": "backend version", "cudnn_version": "backend version", "cudnn_benchmark": "setting",
        "fp32_precision": "precision", "matmul_fp32_precision": "precision", "cudnn_fp32_precision": "precision",
        "cudnn_conv_fp32_precision": "precision", "matmul_allow_tf32": "precision", "cudnn_allow_tf32": "precision",
    }
    observed_settings = (*COMMON_OBSERVED_SETTINGS, "gpu")  # the GPU's name as torch reads it
    bookkeeping_settings = (*COMMON_BOOKKEEPING_SETTINGS,
                            "unreadable")  # why a value above is null: the null itself is compared
    result_fingerprint: ClassVar[tuple[str, ...]] = ("libraries.torch",)

    @classmethod
    def preload(cls) -> None:
        heavy("torch")
        heavy("hwprofile.models")  # defining the networks imports torch.nn

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        return None if env.has_module("torch") else not_installed("torch")

    @classmethod
    def version_text(cls) -> str:
        return f"torch {env.torch_build()['version']}"

    @classmethod
    def unsupported_reason(cls, workload) -> str | None:
        reason = super().unsupported_reason(workload)
        if reason is None and workload.options.get("cuda_graphs"):
            if cls.device_type != "cuda" or workload.mode != "infer":
                return f"{cls.name}: cuda_graphs is supported for torch:cuda infer only"
        return reason

    def load(self, workload) -> None:
        torch = heavy("torch")

        self.workload, opts, t = workload, workload.options, torch
        if opts.get("threads"):
            torch.set_num_threads(int(opts["threads"]))
        gen = torch.Generator().manual_seed(int(opts.get("seed", 0)))
        torch.manual_seed(int(opts.get("seed", 0)))
        self._dev = torch.device(self.device)
        if self._dev.type == "cuda":
            torch.cuda.set_device(self._dev)
            torch.backends.cudnn.benchmark = True  # pycls CUDNN.BENCHMARK
        fmt = torch.channels_last if opts.get("channels_last") else torch.contiguous_format
        spec = spec_from_dict(workload.spec)
        self.model = heavy("hwprofile.models").build(spec).to(self._dev, memory_format=fmt)
        shape = (workload.batch, 3, workload.resolution, workload.resolution)
        x = torch.randn(shape, generator=gen)
        self._half = workload.precision == "fp16"
        if workload.mode == "infer":
            self.model.eval()
            if self._half:
                self.model.half()
                x = x.half()
        else:
            self.model.train()
            self._bn = self._snapshot_bn()
            self._y = torch.randint(0, spec.num_classes, (workload.batch,), generator=gen).to(self._dev)
        self._x = x.to(self._dev, memory_format=fmt)
        self._fn = torch.compile(self.model) if opts.get("compile") else self.model
        self._graph = self._capture() if opts.get("cuda_graphs") else None
        if self._dev.type == "cuda":
            self._events = (t.cuda.Event(enable_timing=True), t.cuda.Event(enable_timing=True))

    def _snapshot_bn(self) -> list[tuple[Any, dict]]:
        torch = heavy("torch")

        saved = []
        for mod in self.model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                saved.append((mod, {k: v.detach().clone() for k, v in mod.named_buffers(recurse=False)}))
        return saved

    def restore_bn(self) -> None:
        """Put back the BatchNorm running statistics saved at load (train mode)."""
        torch = heavy("torch")

        with torch.no_grad():
            for mod, buffers in getattr(self, "_bn", []):
                for name, value in buffers.items():
                    getattr(mod, name).copy_(value)

    def _capture(self):
        torch = heavy("torch")

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(3):
                self._fn(self._x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            self._out = self._fn(self._x)
        return graph

    def infer(self) -> None:
        torch = heavy("torch")

        if self._graph is not None:
            self._graph.replay()
        elif self.loaded.mode == "infer":
            with torch.no_grad():
                self._fn(self._x)
        else:
            self._train_step(torch)

    def _train_step(self, torch) -> None:
        self.model.zero_grad(set_to_none=True)
        with torch.autocast(self._dev.type, dtype=torch.float16, enabled=self._half):
            loss = torch.nn.functional.cross_entropy(self._fn(self._x), self._y)
        loss.backward()

    def layer_times(self, iterations: int, info=None) -> dict[str, Any]:
        """Per-module times and counts (see :func:`torch_layer_times`); ``info`` is unused."""
        if self.loaded.mode != "infer" or self._graph is not None or self._fn is not self.model:
            raise Unsupported(f"{self.name}: per-layer times need eager inference (no compile, cuda_graphs, train)")
        return torch_layer_times(self, iterations)

    def settings(self) -> dict[str, Any]:
        torch = heavy("torch")

        opts = self.workload.options if self.workload else {}
        out = {"library": "torch", "torch_version": torch.__version__, "device": self.device,
               "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
               "channels_last": bool(opts.get("channels_last")), "compile": bool(opts.get("compile")),
               "cuda_graphs": bool(opts.get("cuda_graphs")),
               "precision_mode": "half model" if self._half and self.loaded.mode == "infer"
               else "autocast fp16" if self._half else "fp32"}
        if self._dev.type == "cuda":
            out.update(self._cuda_settings(torch))
        return out

    def _cuda_settings(self, torch) -> dict[str, Any]:
        """GPU, CUDA/cuDNN versions and whether fp32 may run as TF32: diagnostics, so a value that cannot
        be read is recorded as such and never fails the record."""
        out: dict[str, Any] = {"cudnn_benchmark": True, "cuda_version": torch.version.cuda}
        for key, read in (("gpu", lambda: torch.cuda.get_device_name(self._dev)),
                          ("cudnn_version", torch.backends.cudnn.version)):
            try:
                out[key] = read()
            except Exception as exc:  # noqa: BLE001
                out[key] = None
                out.setdefault("unreadable", {})[key] = f"{type(exc).__name__}: {exc}"[:120]
        return {**out, **tf32_settings(torch)}

    def close(self) -> None:
        if getattr(self, "_bn", None):
            self.restore_bn()
        for name in ("_fn", "_graph", "_x", "_y", "_out", "model", "_bn"):
            if hasattr(self, name):
                delattr(self, name)


class TorchCpuRunner(TorchRunner):
    name = "torch:cpu"


class TorchCudaRunner(TorchRunner):
    name = "torch:cuda"
    device_type = "cuda"
    timing_method = "cuda_event"
    result_fingerprint = ("libraries.torch", "libraries.torch_cuda", "gpu.driver", "gpu.cuda_driver",
                          "gpu.cuda_runtime", "gpu.cudnn")

    @classmethod
    def missing(cls, index: int | None) -> str | None:
        build = env.torch_build()
        return (env.torch_cuda_problem() or env.gpu_problem(index)
                or env.cuda_driver_problem(f"torch {build['version']}", build["cuda"]))

    def synchronize(self) -> None:
        torch = heavy("torch")

        torch.cuda.synchronize(self._dev)

    def time_once(self) -> float:
        start, end = self._events
        start.record()
        self.infer()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def reset_peak_memory(self) -> None:
        torch = heavy("torch")

        torch.cuda.synchronize(self._dev)
        torch.cuda.reset_peak_memory_stats(self._dev)

    def memory(self) -> dict[str, dict]:
        torch = heavy("torch")


        return {
            "torch_max_allocated_mb": entry(torch.cuda.max_memory_allocated(self._dev) / MB,
                                            "torch.cuda.max_memory_allocated during warm-up, timing and "
                                            "throughput (weights, inputs, activations, gradients)"),
            "torch_max_reserved_mb": entry(torch.cuda.max_memory_reserved(self._dev) / MB,
                                           "torch.cuda.max_memory_reserved (caching allocator) over the same "
                                           "phase"),
        }


def _numel(x) -> int:
    torch = heavy("torch")

    if isinstance(x, torch.Tensor):
        return x.numel()
    if isinstance(x, (list, tuple)):
        return sum(_numel(v) for v in x)
    return 0


def _module_counts(mod, inp, out, batch: int, elem: int) -> dict:
    """Analytic counts of one module call, as the spec counts them (complexity.py): a convolution's
    multiply-adds are output elements x (input channels / groups) x kernel area (+1 with a bias), a
    linear layer's output elements x input features (+1 with a bias); everything else costs none.
    Bytes: inputs + parameters + outputs at the element size."""
    torch = heavy("torch")

    flops, group, depthwise = 0, None, False
    if isinstance(mod, torch.nn.Conv2d):
        kh, kw = mod.kernel_size
        flops = _numel(out) * (mod.in_channels // mod.groups) * kh * kw + (_numel(out) if mod.bias is not None else 0)
        group = mod.groups
        depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
    elif isinstance(mod, torch.nn.Linear):
        flops = _numel(out) * mod.in_features + (_numel(out) if mod.bias is not None else 0)
    params = sum(p.numel() for p in mod.parameters(recurse=False)) + sum(
        b.numel() for b in mod.buffers(recurse=False))
    return {"flops": flops, "bytes": (_numel(inp) + params + _numel(out)) * elem, "group": group,
            "depthwise": depthwise}


def torch_layer_times(runner: TorchRunner, iterations: int) -> dict[str, Any]:
    """Per-module times from forward pre/post hooks on every module (``perf_counter_ns``; on CUDA a
    synchronize in each hook). A module's own time is its time minus its children's: for a leaf
    module (Conv2d, BatchNorm2d, SiLU, ...) the layer itself, for a container the operations its
    ``forward`` does between its children (the SE block's scaling multiply, a residual add), and
    for a plain Sequential only Python overhead, which goes to an overhead row."""
    torch = heavy("torch")

    model, dev = runner.model, runner._dev
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    elem = 2 if runner._half else 4
    batch = runner.loaded.batch
    names = {m: n or "(model)" for n, m in model.named_modules()}
    stack: list[list] = []
    run: dict[str, float] = {}
    info: dict[str, dict] = {}

    def pre(mod, inp):
        sync()
        stack.append([time.perf_counter_ns(), 0])

    def post(mod, inp, out):
        sync()
        t0, children = stack.pop()
        total = time.perf_counter_ns() - t0
        if stack:
            stack[-1][1] += total
        name = names[mod]
        run[name] = run.get(name, 0.0) + (total - children) / 1e6
        if name not in info:
            leaf = not any(True for _ in mod.children())
            info[name] = {"op_type": type(mod).__name__, "leaf": leaf,
                          **_module_counts(mod, inp, out, batch, elem)}
            if not leaf:
                info[name]["bytes"] = None

    runs, totals = [], []
    handles = [h for mod in model.modules()
               for h in (mod.register_forward_pre_hook(pre), mod.register_forward_hook(post))]
    try:  # the profiled runs alone: the clean latency is measured before and after, never between them
        for i in range(3 + iterations):
            run = {}
            t0 = time.perf_counter_ns()
            runner.infer()
            sync()
            t1 = time.perf_counter_ns()
            if i >= 3:
                runs.append(run)
                totals.append((t1 - t0) / 1e6)
    finally:
        for h in handles:
            h.remove()
    mean, med, total = typical_times(runs, totals)
    rows, overhead = [], []
    for name in mean:
        meta = dict(info[name])
        if meta.pop("leaf"):
            rows.append({"name": name, "kind": "layer", "time_ms": mean[name], "median_ms": med[name], **meta})
        else:
            overhead.append((name, mean[name], meta["op_type"]))
    plain = ("Sequential", "ModuleList")
    glue = [o for o in overhead if o[2] not in plain and o[0] != "(model)"]
    for name, t, op in glue:  # the operations a block's forward does itself (SE multiply, residual add)
        rows.append({"name": f"{name} (own ops)", "kind": "layer", "time_ms": t, "op_type": f"{op} ops",
                     "flops": 0, "bytes": None, "group": None, "depthwise": False})
    rest = sum(t for name, t, op in overhead if op in plain or name == "(model)")
    rows.append({"name": "(containers: Python between modules)", "kind": "overhead", "time_ms": rest,
                 "op_type": "overhead", "flops": 0, "bytes": None, "group": None, "depthwise": False})
    return {"method": "forward pre/post hooks on every module (perf_counter_ns" + (
                "; a CUDA synchronize in each hook" if dev.type == "cuda" else "") + "); per module the mean over "
                      "the typical profiled runs (total in the interquartile range); a container's own time is its "
                      "time minus its children's",
            "iterations": iterations, "profiled_run_ms": total, "element_bytes": elem, "rows": rows,
            "time_source": "host_synchronized" if dev.type == "cuda" else "cpu"}


_PRECISION_PATHS = {"fp32_precision": (), "matmul_fp32_precision": ("cuda", "matmul"),
                    "cudnn_fp32_precision": ("cudnn",), "cudnn_conv_fp32_precision": ("cudnn", "conv")}


def tf32_settings(torch) -> dict[str, Any]:
    """Whether fp32 matmuls and convolutions may run as TF32, read without ever raising.

    torch >= 2.9 has ``fp32_precision`` settings ("ieee" | "tf32" | "none" = inherit) and raises when
    the legacy ``allow_tf32`` flags are read after the two APIs were mixed; so the new settings are
    read where they exist, and each legacy flag is read where torch allows it, else derived from the
    new setting ("tf32" -> True, "ieee" -> False, else None).
    """
    out: dict[str, Any] = {}
    for key, path in _PRECISION_PATHS.items():
        obj = torch.backends
        for part in path:
            obj = getattr(obj, part, None)
        try:
            value = getattr(obj, "fp32_precision", None) if obj is not None else None
        except Exception:  # noqa: BLE001
            value = None
        if value is not None:
            out[key] = str(value)
    legacy = {"matmul_allow_tf32": (lambda: torch.backends.cuda.matmul.allow_tf32, "matmul_fp32_precision"),
              "cudnn_allow_tf32": (lambda: torch.backends.cudnn.allow_tf32, "cudnn_conv_fp32_precision")}
    for key, (read, new) in legacy.items():
        try:
            out[key] = bool(read())
        except Exception:  # noqa: BLE001 - mixed APIs (torch >= 2.9): derive it from the new setting
            out[key] = {"tf32": True, "ieee": False}.get(out.get(new, ""))
    return out
