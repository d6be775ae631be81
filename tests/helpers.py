"""Small assertions shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

PROFILE_FIXTURES = Path(__file__).resolve().parent / "data" / "profiles"


def fixture_profile(name: str) -> str:
    """Path of a synthetic fixture profile under tests/data/profiles."""
    return str(PROFILE_FIXTURES / name)


def one_line_error(code: int, err: str, needle: str) -> None:
    """Exit 2, the expected words, one line on stderr, no traceback."""
    assert code == 2, err
    assert needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
