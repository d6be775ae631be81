"""``hwprofile export`` writes only its -o file: planted links are not followed, unwritable targets are one
line, and a cache record cannot point the copy at another file."""

from __future__ import annotations

import json
import os

import pytest

from exporters.artifacts import sha256_file


def _one_line(code, err, expected=2):
    assert code == expected, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_planted_temporary_links_are_not_followed(cli, onnx_cache, tmp_path, b0):
    out_dir, victim = tmp_path / "out", tmp_path / "victim.txt"
    out_dir.mkdir()
    victim.write_text("precious")
    for name in (".m.onnx.tmp", f".m.onnx.{os.getpid()}-000000.tmp"):
        (out_dir / name).symlink_to(victim)
    code, _, err = cli("export", "EfficientNet-B0", "-o", str(out_dir / "m.onnx"), "--cache-dir", str(onnx_cache))
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert sha256_file(out_dir / "m.onnx") == b0.sha256 and not (out_dir / "m.onnx").is_symlink()


@pytest.mark.parametrize("target", ["/proc/hwprofile-test.onnx", "/proc/self/hwprofile-test.onnx"])
def test_export_into_an_unwritable_folder_is_one_line(cli, onnx_cache, b0, target):
    code, _, err = cli("export", "EfficientNet-B0", "-o", target, "--cache-dir", str(onnx_cache))
    _one_line(code, err)


def test_export_refuses_a_symlink_at_the_target(cli, onnx_cache, tmp_path, b0):
    victim = tmp_path / "victim.onnx"
    victim.write_bytes(b"precious")
    link = tmp_path / "m.onnx"
    link.symlink_to(victim)
    for extra in ([], ["--force"]):
        code, _, err = cli("export", "EfficientNet-B0", "-o", str(link), "--cache-dir", str(onnx_cache), *extra)
        _one_line(code, err)
        assert victim.read_bytes() == b"precious"


@pytest.mark.slow
def test_a_cache_record_pointing_elsewhere_is_not_trusted(cli, onnx_cache, tmp_path, y200_fp16):
    """A writable shared cache: its record names a secret file (with that file's sha256). (RegNetY-200MF in fp16:
    the session's quickest export to make again.)"""
    cache = tmp_path / "cache"
    cache.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("the user's private key")
    key = y200_fp16.cache_key
    record = json.loads((onnx_cache / f"{key}.json").read_text())
    # the same export in a fresh cache: the record moved, the file replaced by the secret
    record.update(path=str(secret), sha256=sha256_file(secret))
    (cache / f"{key}.json").write_text(json.dumps(record))
    out = tmp_path / "m.onnx"
    code, _, err = cli("export", "RegNetY-200MF", "--fp16", "-o", str(out), "--cache-dir", str(cache), "--no-verify")
    assert code == 0, err
    assert out.read_bytes() != secret.read_bytes()
    data = json.loads((cache / f"{key}.json").read_text())
    assert os.path.dirname(data["path"]) == str(cache)  # re-exported into the cache


def test_a_cache_record_with_a_symlinked_file_is_not_trusted(tmp_path, onnx_cache, b0):
    from exporters.artifacts import OnnxArtifact, cached_artifact

    cache = tmp_path / "cache"
    cache.mkdir()
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(b"secret")
    (cache / f"{b0.cache_key}.onnx").symlink_to(secret)
    record = json.loads((onnx_cache / f"{b0.cache_key}.json").read_text())
    record.update(path=str(cache / f"{b0.cache_key}.onnx"), sha256=sha256_file(secret))
    (cache / f"{b0.cache_key}.json").write_text(json.dumps(record))
    assert cached_artifact(cache, b0.cache_key, OnnxArtifact) is None
    assert cached_artifact(onnx_cache, b0.cache_key, OnnxArtifact) is not None  # the real entry still hits
