"""The one atomic writer: exclusive temporaries in the target folder, no replacing without consent, no links
followed, nothing left behind on failure, stale temporaries cleaned."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from hwprofile.atomic import (
    TargetExists,
    check_writable,
    clean_stale,
    copy_file,
    inside,
    safe_name,
    write,
    write_json,
    write_text,
)
from hwprofile.errors import EnvironmentProblem, InputFileError, InternalError


def test_writes_and_refuses_to_replace_without_consent(tmp_path):
    path = tmp_path / "a.txt"
    write_text(path, "one")
    with pytest.raises(TargetExists, match="--force"):
        write_text(path, "two")
    assert path.read_text() == "one"
    write_text(path, "three", replace=True)
    assert path.read_text() == "three" and os.listdir(tmp_path) == ["a.txt"]


def test_a_failing_write_leaves_nothing(tmp_path):
    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write(tmp_path / "a.txt", boom)
    assert os.listdir(tmp_path) == []


def test_symlink_targets_are_refused_even_with_replace(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    for replace in (False, True):
        with pytest.raises(InputFileError, match="symbolic link"):
            write_text(link, "x", replace=replace)
    assert victim.read_text() == "precious"


def test_unwritable_places_are_one_line_errors(tmp_path):
    with pytest.raises(InputFileError, match="cannot write"):
        write_text("/proc/hwprofile-atomic-test", "x")
    (tmp_path / "f").write_text("")
    with pytest.raises(InputFileError):
        write_text(tmp_path / "f" / "below-a-file.txt", "x")


@pytest.mark.parametrize("call", ["write", "fsync"])
def test_a_full_disk_is_found_before_any_work(tmp_path, monkeypatch, call):
    """check_writable writes and syncs a probe: a file system that refuses data (ENOSPC in write, or only in
    fsync, as NFS and some tmpfs report it) is exit 3 now, and the probe is gone."""
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, call, full)
    with pytest.raises(EnvironmentProblem, match="No space left on device") as info:
        check_writable(tmp_path / "p.json", "the profile")
    assert info.value.exit_code == 3 and os.listdir(tmp_path) == []
    monkeypatch.undo()
    check_writable(tmp_path / "p.json", "the profile")
    assert os.listdir(tmp_path) == []


def test_non_standard_json_is_never_written(tmp_path):
    with pytest.raises(InternalError, match="non-standard"):
        write_json(tmp_path / "a.json", {"x": float("nan")})
    assert os.listdir(tmp_path) == []


def test_copy_refuses_a_link_as_source(tmp_path):
    real = tmp_path / "real"
    real.write_text("data")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(InputFileError):
        copy_file(link, tmp_path / "out")
    copy_file(real, tmp_path / "out")
    assert (tmp_path / "out").read_text() == "data"


def test_stale_temporaries_are_removed_live_ones_kept(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    target = tmp_path / "p.json"
    dead = tmp_path / f".p.json.{proc.pid}-abcdef.tmp"
    live = tmp_path / f".p.json.{os.getppid()}-abcdef.tmp"
    old = tmp_path / ".p.json.q1w2e3r4.tmp"
    for p in (dead, live, old):
        p.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    removed = clean_stale(target)
    assert sorted(removed) == sorted([dead, old]) and live.exists()


@pytest.mark.parametrize("name,expected", [("../../x", "x"), ("a/b", "a_b"), ("..", "unnamed"), (".hidden", "hidden"),
                                           ("cpu-amd__ort-cpu__b1.png", "cpu-amd__ort-cpu__b1.png")])
def test_names_from_data_stay_one_component(tmp_path, name, expected):
    assert safe_name(name) == expected
    assert inside(tmp_path, name).parent == tmp_path
