"""The GPU image's first contact (issue 26): the carried wheels match what ``import hwprofile`` needs and the
image lacks; gpu-validate.sh keeps its time limits and says so; the onnxruntime-gpu chunks round-trip; and,
under the ``gpu_image`` marker, the whole rehearsal on a Python 3.12 venv shaped like the image.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "scripts" / "gpu-image"
#: how the image's Python evaluates requirement markers
IMAGE_ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
             "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
             "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}


def image_packages() -> dict[str, str | None]:
    """The image's packages (canonical name -> version, None where none was recorded)."""
    out = {}
    for line in (IMAGE / "packages.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version or None
    return out


def lock_pins(path: Path = IMAGE / "wheels.lock") -> dict[str, tuple[str, list[str]]]:
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split()[0].split("==")
            pins[canonicalize_name(name)] = (version, re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return pins


def carried_although_present() -> set[str]:
    text = (IMAGE / "wheels.lock").read_text()
    found = re.findall(r"^# carried although in the image: ([\w.-]+)", text, re.M)
    return {canonicalize_name(n) for n in found}


def runtime_requirements() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["dependencies"]]


def carried_closure() -> tuple[set[str], list[tuple[str, Requirement]]]:
    """What the image must be given: hwprofile's runtime requirements the image lacks, and theirs, walked
    through the installed metadata of this environment; also every (requirer, requirement) on an image
    package met along the way (their versions are checked apart)."""
    image, carried, on_image = image_packages(), set(), []
    todo = [("hwprofile", r) for r in runtime_requirements()]
    while todo:
        requirer, req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(IMAGE_ENV):
            continue
        name = canonicalize_name(req.name)
        if name in image:
            on_image.append((requirer, req))
            continue
        if name in carried:
            continue
        carried.add(name)
        todo += [(name, Requirement(r)) for r in metadata.requires(name) or []]
    return carried, on_image


def test_the_lock_carries_what_import_hwprofile_needs_and_the_image_lacks():
    carried, _ = carried_closure()
    pins = lock_pins()
    assert carried == {"pydantic", "pydantic-core", "annotated-types", "typing-inspection"}
    assert set(pins) == carried | carried_although_present(), "scripts/gpu-image/wheels.lock is out of date"
    assert carried_although_present() == {"typing-extensions"}
    image = image_packages()
    assert all(n not in image or n in carried_although_present() for n in pins)


def test_requirements_on_image_packages_are_met_or_the_package_is_carried():
    """A requirement on an image package whose version the list records must be met by that version; one whose
    version is not recorded, with a lower bound, must be carried (typing-extensions for pydantic)."""
    _, on_image = carried_closure()
    image, declared = image_packages(), carried_although_present()
    for requirer, req in on_image:
        name = canonicalize_name(req.name)
        version = image[name]
        if version is not None:
            assert req.specifier.contains(Version(version), prereleases=True), (requirer, str(req), version)
        elif any(s.operator in (">=", ">", "==", "~=") for s in req.specifier) and requirer != "hwprofile":
            assert name in declared, f"{requirer} needs {req}; the image's version is unknown: carry it"


def test_every_pin_has_a_sha256_and_the_compiled_one_has_one_per_python():
    pins = lock_pins()
    assert all(hashes for _, hashes in pins.values())
    assert len(pins["pydantic-core"][1]) == 3  # cp311, cp312, cp313
    (version, hashes), = lock_pins(IMAGE / "ort-gpu.lock").values()
    assert version == "1.31.1" and len(hashes) == 1


def test_the_pins_satisfy_each_other():
    """pydantic pins pydantic-core exactly; the pins must agree with it and with each other's floors."""
    pins = {n: Version(v) for n, (v, _) in lock_pins().items()}
    if metadata.version("pydantic") != str(pins["pydantic"]):
        pytest.skip("this environment's pydantic is not the pinned one: its metadata says nothing of the pin")
    for name in ("pydantic", "pydantic-core", "typing-inspection"):
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None and canonicalize_name(req.name) in pins:
                assert req.specifier.contains(pins[canonicalize_name(req.name)]), (name, text)


# ------------------------------------------------------------------------------------------ the scripts

def _script(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})})


@pytest.mark.slow
@pytest.mark.parametrize("mode,limit", [("--quick", 240), ("", 600)])
def test_gpu_validate_stays_within_its_time_limit_and_says_so(mode, limit, tmp_path):
    wheels, chunks = tmp_path / "w", tmp_path / "c"
    wheels.mkdir()
    chunks.mkdir()
    args = ["scripts/gpu-validate.sh", *([mode] if mode else []), "--dry-run", "--wheels", str(wheels),
            "--ort-gpu", str(chunks)]
    out = _script(*args)
    assert out.returncode in (0, 3), out.stdout + out.stderr  # 3: no GPU here (after the plan)
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("time limits:"))
    steps = dict((name, int(s)) for name, s in re.findall(r"(\w+) (\d+) s", line.split(";")[0]))
    total = int(re.search(r"at most (\d+) s in all", line).group(1))
    assert total == sum(steps.values()) <= limit
    assert {"wheels", "ort_gpu", "import", "devices", "peaks", "runners", "plan", "tests", "sweep",
            "report"} == set(steps)
    docs = (ROOT / "docs" / "gpu.md").read_text()
    assert f"at most {total} s" in docs, f"docs/gpu.md does not state {mode or 'the full mode'}'s {total} s"


def test_gpu_validate_refuses_bad_options():
    assert _script("scripts/gpu-validate.sh", "--nope").returncode == 2
    out = _script("scripts/gpu-validate.sh", "--wheels", "/nonexistent/folder", "--dry-run")
    assert out.returncode == 2 and "no folder" in out.stderr
    out = _script("scripts/gpu-wheels.sh")
    assert out.returncode == 2 and "expected a folder" in out.stderr
    out = _script("scripts/ort-gpu-carry.sh", "split", "--chunk-mib", "60")
    assert out.returncode == 2 and "1 to 59" in out.stderr


def test_ort_gpu_chunks_round_trip_and_damage_is_found(tmp_path):
    wheel = tmp_path / "in.whl"
    wheel.write_bytes(os.urandom(5 * 2**20 + 123))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    lock = tmp_path / "ort.lock"
    lock.write_text(f"onnxruntime-gpu==0.0.1 \\\n    --hash=sha256:{digest}\n")
    env = {"HWPROFILE_ORT_GPU_LOCK": str(lock)}
    chunks = tmp_path / "chunks"
    out = _script("scripts/ort-gpu-carry.sh", "split", "--wheel", str(wheel), "--dir", str(chunks),
                  "--chunk-mib", "2", env=env)
    assert out.returncode == 0, out.stderr
    parts = sorted(chunks.glob("*.part*"))
    assert len(parts) == 3 and all(p.stat().st_size <= 2 * 2**20 for p in parts)
    assert hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest() == digest
    assert wheel.exists()  # a wheel given with --wheel is the caller's: kept
    assert "run(command=" in out.stdout and out.stdout.count("run(command=") == 3
    assert _script("scripts/ort-gpu-carry.sh", "status", "--dir", str(chunks), env=env).returncode == 0
    parts[1].unlink()
    out = _script("scripts/ort-gpu-carry.sh", "status", "--dir", str(chunks), env=env)
    assert out.returncode == 1 and "2 of 3 chunks" in out.stdout and "missing" in out.stdout
    parts[1].write_bytes(b"damaged")
    out = _script("scripts/ort-gpu-carry.sh", "install", str(tmp_path / "site"), "--dir", str(chunks), env=env)
    assert out.returncode == 3 and "damaged" in out.stdout and not (tmp_path / "site").exists()
    other = tmp_path / "other.whl"
    other.write_bytes(b"not the pinned wheel")
    out = _script("scripts/ort-gpu-carry.sh", "split", "--wheel", str(other), "--dir", str(tmp_path / "x"), env=env)
    assert out.returncode == 3 and "not the pinned" in out.stderr


@pytest.mark.gpu_image
@pytest.mark.slow
def test_the_gpu_image_rehearsal(tmp_path):
    """scripts/gpu-image-dryrun.sh: a Python 3.12 venv like the image (no pydantic), the carried wheels,
    gpu-validate.sh --quick: hwprofile imports, devices.json says torch:cpu yes and torch:cuda no (with why),
    exit 3. Building the venv downloads several GB the first time; later runs reuse it."""
    out = _script("scripts/gpu-image-dryrun.sh", "--out-dir", str(tmp_path / "out"), timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "ok: gpu-validate.sh ended with the no-GPU exit 3" in out.stdout
    assert (tmp_path / "out" / "devices.json").exists()
