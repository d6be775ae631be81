"""How the regression gate measures: a sweep taken in interleaved rounds, and suspects measured again.

Both interleave (A B C A B C ...) so that a slow spell of the machine hits every record alike and shows
up as drift between a record's processes, inside its interval, instead of shifting whole records.
Nothing here decides or prints; :mod:`hwprofile.gate._decide` decides, :mod:`hwprofile.gate._session` orchestrates.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwprofile import sweep
from hwprofile.analysis import Identity, identity, pool_all
from hwprofile.errors import ConfigError, SchemaError
from hwprofile.gate._decide import Remeasure
from hwprofile.measure import device_id, fingerprint
from hwprofile.profile import Profile, Record
from hwprofile.runners import resolve_device
from hwprofile.sweep import PARAMS, SweepConfig, check_types


def sweep_config_of(profile: Profile, where: str = "the profile") -> SweepConfig:
    """The sweep configuration a profile was measured with (defaults where it does not say); a saved
    configuration that is not one is a one-line SchemaError naming the field."""
    cfg = next((s.get("config") for s in reversed(profile.sweeps) if isinstance(s, dict) and s.get("config")),
               None) or {}
    if not isinstance(cfg, dict):
        raise SchemaError(f"{where}: sweeps[].config is {type(cfg).__name__}; expected an object of sweep options")
    known: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()
             if k in SweepConfig.__dataclass_fields__}
    config = SweepConfig(**known)
    try:
        check_types(config, PARAMS)
    except ConfigError as exc:
        raise SchemaError(f"{where}: the saved sweep options are damaged: {exc}") from None
    return config


def one_thread_on_cpu(config: SweepConfig) -> tuple[SweepConfig, bool]:
    """On CPU the gate measures every runner with 1 thread unless a ``threads`` option says otherwise:
    on small machines 2-thread sessions drift far more than 1-thread ones (docs/ci.md, the gate's A/A
    data). Returns the configuration and whether the 1-thread default was applied."""
    told = any(k == "threads" for opts in config.options.values() for k in opts)
    if told or resolve_device(config.device) != "cpu":
        return config, False
    return dataclasses.replace(config, options={**config.options, "*": {**config.options.get("*", {}),
                                                                        "threads": 1}}), True


def threads_note(current: Profile, defaulted: bool) -> str | None:
    """Which CPU threads each runner of the current profile measured with, and why."""
    seen: dict[str, set] = {}
    for r in current.records:
        if r.runner.endswith(":cpu") and r.settings.threads is not None:
            seen.setdefault(r.runner, set()).add(r.settings.threads)
    if not seen:
        return None
    text = "CPU threads per runner: " + ", ".join(f"{k} {'/'.join(map(str, sorted(v)))}"
                                                 for k, v in sorted(seen.items()))
    return text + (" (check on CPU uses 1 thread per runner unless --threads N or --option threads=N says "
                   "otherwise)" if defaulted else "")


def measure_in_rounds(config: SweepConfig, out: str | Path | None,
                      quiet: bool = True) -> tuple[Profile, Path, list[str]]:
    """Measure ``config`` with its ``repeats`` processes per record taken in rounds (A B C A B C ...).

    Each round is a sweep of one process per record; the rounds are pooled per record. A record's
    processes then span the whole session, so a slow spell of the machine shows up as drift between
    them (in the interval) instead of shifting whole records. Returns (profile, path, notes).
    """
    rounds = int(config.timing.get("repeats", 1))
    if rounds <= 1:
        profile, path, notes = sweep.run_sweep(config, out, quiet=quiet, peaks=False)
        return profile, Path(path), notes
    if out:
        if Path(out).exists():
            raise ConfigError(f"{str(out)!r} already exists; choose another --out")
        sweep.check_writable(Path(out))
    one = dataclasses.replace(config, timing={**config.timing, "repeats": 1},
                              budget_s=None if config.budget_s is None else config.budget_s / rounds)
    found: dict = {}
    with tempfile.TemporaryDirectory(prefix="hwprofile-rounds-") as tmp:
        for i in range(rounds):
            first, _, notes = sweep.run_sweep(one, Path(tmp) / f"round-{i}.json", quiet=quiet, peaks=False)
            for r in first.records:
                found.setdefault(identity(r), []).append(r)
            if i == 0:
                devices, sweep_info = first.devices, dict(first.sweeps[-1])
    sweep_info.update(config=config.identity(), interleaved_rounds=rounds)
    profile = Profile(devices=devices, sweeps=[sweep_info], records=[pool_all(rs) for rs in found.values()])
    path = Path(out) if out else sweep.default_out(next(iter(devices)))
    profile.save(path)
    return profile, path, notes


def _config_for(base: SweepConfig, ident: Identity) -> SweepConfig | None:
    """A one-record sweep configuration for ``ident``; None if its ONNX file is unknown."""
    model, strategy, scale, batch, runner, precision, mode = ident
    if model.lower().endswith(".onnx"):
        found = next((m for m in base.models if Path(m).name == model and Path(m).is_file()), None)
        if found is None:
            return None
        model = found
    mine = base.runner_options(runner)  # the sweep's options narrowed to the one runner measured again
    return dataclasses.replace(base, runners=(runner,), models=(model,), scales=(scale,), batch_sizes=(batch,),
                               strategies=(strategy or base.strategies[0],), precision=precision, mode=mode,
                               timing={**base.timing, "repeats": 1}, budget_s=None,
                               options={runner: mine} if mine else {})


def remeasurer(rounds: int, current: Profile, sweep_config: SweepConfig | None, device: str) -> Remeasure:
    """Measures suspects again on this machine: ``rounds`` rounds of one process per suspect,
    interleaved (A B C A B C), so a slow spell of the machine hits every suspect alike."""
    base = sweep_config or sweep_config_of(current)
    here = device_id(fingerprint(resolve_device(base.device)))
    if here != device:
        raise ConfigError(f"--remeasure measures on this machine ({here}), but the current profile was measured "
                          f"on {device}")

    def remeasure(idents: Sequence[Identity]) -> list[Record]:
        found: dict = {}
        with tempfile.TemporaryDirectory(prefix="hwprofile-remeasure-") as tmp:
            for rnd in range(rounds):
                for n, ident in enumerate(idents):
                    cfg = _config_for(base, ident)
                    if cfg is None:
                        continue
                    profile, _, _ = sweep.run_sweep(cfg, Path(tmp) / f"{rnd}-{n}.json", quiet=True, peaks=False)
                    found.setdefault(ident, []).extend(r for r in profile.records if identity(r) == ident and r.ok)
        return [pool_all(recs) for recs in found.values() if recs]

    return remeasure


def save_remeasured(current: Profile, pooled: list[Record], measured_path: Path | None, device: str) -> Path:
    """Keep the re-measured processes: in the profile the gate measured, else in a new file. Returns its path."""
    if measured_path is not None:
        path = measured_path
        target = Profile.load(path)
        for r in pooled:
            target.upsert(r)
    else:
        path = sweep.default_out(device).with_suffix(".remeasured.json")
        target = Profile(devices=dict(current.devices), sweeps=list(current.sweeps), records=list(pooled))
    target.save(path)
    return path
