import platform

from hwprofile.profile import Profile
from hwprofile.sweep import SweepConfig, run_sweep
from hwprofile.sweep._local import LocalExecutor
from sweep_fakes import fake_measure

SMALL = dict(device="cpu", runners=("torch:cpu",), strategies=("w",), scales=(1.0, 2.0), batch_sizes=(1,))


def test_local_records_say_where_they_ran(tmp_path):
    out = tmp_path / "p.json"
    run_sweep(SweepConfig(**SMALL), out, quiet=True, executor=LocalExecutor(fake_measure), peaks=False)
    records = Profile.load(out).records
    assert len(records) == 2
    assert all(r.settings.executor == "local" and r.settings.node == platform.node() for r in records)


def test_default_executor_is_local(tmp_path):
    prof, _, _ = run_sweep(SweepConfig(**SMALL), tmp_path / "p.json", quiet=True, measure_fn=fake_measure)
    assert {r.settings.executor for r in prof.records} == {"local"}


def test_ray_options_need_the_ray_executor(cli, tmp_path):
    for extra in (["--ray-address", "auto"], ["--device", "all"], ["--accelerator", "A100"]):
        code, _, err = cli("run", "--runners", "torch:cpu", "--out", str(tmp_path / "p.json"), *extra)
        assert code == 2 and "needs --executor ray" in err and len(err.strip().splitlines()) == 1
