"""Small helpers shared by the tests: fixture paths, the fixture generator, whether CUDA is here, one-line errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PROFILE_FIXTURES = Path(__file__).resolve().parent / "data" / "profiles"


def make_profiles() -> ModuleType:
    """tests/data/profiles/make_profiles.py (the synthetic fixtures' generator), loaded as a module."""
    spec = importlib.util.spec_from_file_location("make_profiles", PROFILE_FIXTURES / "make_profiles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def has_cuda() -> bool:
    """Whether torch is installed and sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def fixture_profile(name: str) -> str:
    """Path of a synthetic fixture profile under tests/data/profiles."""
    return str(PROFILE_FIXTURES / name)


#: the first line ``hwprofile run`` writes on stderr (what it is about to measure, its estimate): information
START_LINE = "hwprofile run: "


def error_lines(err: str) -> list[str]:
    """stderr's lines without ``run``'s start line."""
    return [ln for ln in err.strip().splitlines() if not ln.startswith(START_LINE)]


def one_line(code: int, err: str, expected: int = 2) -> None:
    """Exit ``expected``, one line on stderr from hwprofile (besides run's start line), no traceback."""
    assert code == expected, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("hwprofile"), err


def one_line_error(code: int, err: str, needle: str) -> None:
    """Exit 2, the expected words, one line on stderr, no traceback."""
    assert code == 2, err
    assert needle in err, err
    assert len(error_lines(err)) == 1 and "Traceback" not in err
