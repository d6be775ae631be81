"""``python -m hwprofile``."""

from .cli import entry

entry()
