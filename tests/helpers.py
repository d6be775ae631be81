"""Small assertions shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

PROFILE_FIXTURES = Path(__file__).resolve().parent / "data" / "profiles"


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
