"""The one way hwprofile imports a heavy library: on first use, inside the function that needs it.

``import hwprofile``, ``import exporters`` and ``hwprofile --help`` import none of :data:`HEAVY`;
everything else (hwprofile's own modules, numpy, pydantic, tabulate...) is imported at the top
of the module that uses it. ``hwprofile.models`` is listed because defining its networks imports
torch. A missing library raises :class:`MissingLibrary`: an ``ImportError`` (callers that fall
back keep working) and an :class:`~hwprofile.errors.EnvironmentProblem` (the CLI prints one line
and exits 3), naming the extra that installs it.

>>> torch = heavy("torch")
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from types import ModuleType

from hwprofile.errors import EnvironmentProblem

#: how to install torch: pinned and first (a bare ``torch>=2.4`` can resolve to a multi-GB CUDA build), then an extra
_TORCH = ('pip install "torch==2.13.0" (a CPU or a CUDA build: docs/install.md), then pip install -e ".[cpu]" '
          '(pip install -e ".[gpu]" on a GPU machine)')
#: onnx and onnxscript come with torch in the [export] extra, which [cpu] and [gpu] include
_EXPORT = 'pip install -e ".[export]" (install torch first: docs/install.md)'

#: top-level name -> how to install it (the pip extra; scipy is a dependency of the core install)
HEAVY: dict[str, str] = {
    "torch": _TORCH,
    "onnx": _EXPORT,
    "onnxscript": _EXPORT,
    "onnxruntime": 'pip install -e ".[cpu]" or pip install -e ".[gpu]", never both',
    "tensorrt": 'pip install -e ".[trt]" on a machine that reaches NVIDIA\'s index',
    "pynvml": 'pip install -e ".[gpu]"',
    "matplotlib": 'pip install -e ".[plot]"',
    "pandas": 'pip install -e ".[plot]"',
    "scipy": "pip install scipy",
    "ray": 'pip install -e ".[ray]"',
    "hwprofile.models": _TORCH,
}


#: the source tree this hwprofile runs from, when it runs from a checkout (pip install -e, or python -m)
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def from_checkout(root: Path = SOURCE_ROOT) -> bool:
    """Whether hwprofile runs from a source checkout (its pyproject.toml beside the package), not a wheel."""
    pyproject = root / "pyproject.toml"
    try:
        return pyproject.is_file() and 'name = "hwprofile"' in pyproject.read_text(encoding="utf-8")
    except OSError:
        return False


def extra_hint(extra: str, root: Path = SOURCE_ROOT, cwd: Path | None = None) -> str:
    """How to install a pip extra of hwprofile here: ``pip install -e ".[plot]"`` in a checkout (with its path
    when run from elsewhere), ``pip install "hwprofile[plot]"`` for an installed wheel."""
    if not from_checkout(root):
        return f'pip install "hwprofile[{extra}]"'
    here = Path(cwd or os.getcwd()).resolve()
    where = "." if here == root.resolve() else str(root)
    return f'pip install -e "{where}[{extra}]"'


def install_hint(text: str, root: Path = SOURCE_ROOT, cwd: Path | None = None) -> str:
    """``text`` with every ``pip install -e ".[X]"`` written as :func:`extra_hint` says for this installation."""
    return re.sub(r'pip install -e "\.\[([\w,-]+)\]"', lambda m: extra_hint(m.group(1), root, cwd), text)


def not_installed(name: str, library: str | None = None) -> str:
    """``"torch is not installed: pip install ..."``: a missing module and how to install it here (the hint of
    ``library``, one of :data:`HEAVY`, by default ``name`` itself)."""
    return f"{name} is not installed: {install_hint(HEAVY[library or name])}"


class MissingLibrary(ImportError, EnvironmentProblem):
    """A heavy library hwprofile needs for this step is not installed."""

    exit_code = 3


def heavy(name: str) -> ModuleType:
    """Import ``name`` (one of :data:`HEAVY` or a submodule of one) now and return the module."""
    root = next((h for h in HEAVY if name == h or name.startswith(h + ".")), None)
    if root is None:
        raise ValueError(f"{name!r} is not a heavy library; import it at the top of the module")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or name
        what = missing.split(".")[0] if root.startswith("hwprofile.") else name
        if not root.startswith("hwprofile.") and missing.split(".")[0] != root:
            raise  # the library is there but one of its own dependencies is not: its message says which
        raise MissingLibrary(not_installed(what, what if what in HEAVY else root), name=missing) from None
