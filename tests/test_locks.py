"""hwprofile.locks: one sweep at a time writes a profile (issue 22, item 4)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hwprofile.errors import EnvironmentProblem, HwprofileError
from hwprofile.locks import ProfileBusy, lock_path, profile_lock

HOLD = """
import sys
from hwprofile.locks import profile_lock
with profile_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def holder(path):
    """Another process holding the lock of ``path`` until its stdin closes (a handshake, not a sleep)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_held_lock_refuses_another_process_in_one_line(tmp_path):
    path = tmp_path / "p.json"
    proc = holder(path)
    try:
        with pytest.raises(ProfileBusy) as info:
            with profile_lock(path):
                pytest.fail("two holders")
        text = str(info.value)
        assert isinstance(info.value, EnvironmentProblem) and info.value.exit_code == 3
        assert f"pid {proc.pid}" in text and "\n" not in text and str(path) in text
    finally:
        proc.communicate("", timeout=60)
    with profile_lock(path):  # released when its holder ended
        pass
    assert list(tmp_path.iterdir()) == []  # the lock file is removed by its last holder


def test_a_killed_holder_leaves_a_lock_the_next_sweep_takes_over(tmp_path):
    path = tmp_path / "p.json"
    proc = holder(path)
    proc.kill()
    proc.wait()
    assert lock_path(path).exists()  # left behind, but no longer locked
    with profile_lock(path):
        assert lock_path(path).read_text() == str(os.getpid())
    assert not lock_path(path).exists()


def test_the_lock_nests_in_one_process(tmp_path):
    path = tmp_path / "p.json"
    with profile_lock(path):
        with profile_lock(path):
            assert lock_path(path).exists()
        assert lock_path(path).exists()
    assert not lock_path(path).exists()


def test_a_link_at_the_locks_name_is_refused_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    path = tmp_path / "p.json"
    lock_path(path).symlink_to(victim)
    with pytest.raises(HwprofileError) as info:
        with profile_lock(path):
            pass
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    assert victim.read_text() == "precious"


def test_a_lock_in_a_folder_that_cannot_exist_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(HwprofileError) as info:
        with profile_lock(tmp_path / "file" / "p.json"):
            pass
    assert info.value.exit_code == 2 and "not a folder" in str(info.value)
