"""Install hints name the extra as this installation takes it (issue 23: the plot hint was wrong for a checkout)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hwprofile._lazy import extra_hint, install_hint
from hwprofile.analysis import _plot as plot
from hwprofile.errors import EnvironmentProblem

ROOT = Path(__file__).resolve().parents[1]


def test_a_checkout_installs_its_own_extra_and_a_wheel_the_published_one(tmp_path):
    assert extra_hint("plot", ROOT, cwd=ROOT) == 'pip install -e ".[plot]"'
    assert extra_hint("plot", ROOT, cwd=tmp_path) == f'pip install -e "{ROOT}[plot]"'
    assert extra_hint("plot", tmp_path, cwd=tmp_path) == 'pip install "hwprofile[plot]"'  # no pyproject: a wheel
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert extra_hint("plot", tmp_path, cwd=tmp_path) == 'pip install "hwprofile[plot]"'
    assert install_hint('pip install -e ".[ray]"', tmp_path) == 'pip install "hwprofile[ray]"'


def test_plot_without_matplotlib_says_how_to_install_it_here(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(EnvironmentProblem) as info:
        plot.pyplot()
    assert str(info.value) == 'plotting needs matplotlib: pip install -e ".[plot]"'
    assert "hwprofile[plot]" not in str(info.value)
