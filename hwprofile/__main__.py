"""``python -m hwprofile``."""

from hwprofile.cli import entry

entry()
