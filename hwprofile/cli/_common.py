"""Argument helpers shared by subcommands."""

from __future__ import annotations

from ..errors import ConfigError


def csv_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items are an error)."""
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise ConfigError(f"expected a comma-separated list, got {text!r}")
    return items


def float_list(text: str, what: str) -> list[float]:
    values = []
    for item in csv_list(text):
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(f"{what}: {item!r} is not a number; expected e.g. 1,2,4") from None
    return values
