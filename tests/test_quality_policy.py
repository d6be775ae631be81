"""One quality policy for every reader (issue 23): show, predict, select, plot, compare, merge and the per-strategy
table use the clean and noisy records (hwprofile.analysis._follows.usable) and visibly mark what they leave out."""

from __future__ import annotations

import json

import pytest

from hwprofile.analysis import by_group, compare_sides, left_out_text, predict, select, sides, strategy_growth, usable
from hwprofile.analysis._follows import groups, is_used, state
from hwprofile.analysis._plot import LEFT_OUT_MARKER, figure, plot_groups, pyplot
from hwprofile.analysis._predict import candidates
from hwprofile.profile import Profile
from synthetic import synthetic_profile

BAD_FACTOR = 10.0  # a disturbed record 10x too slow: any reader that used it would move visibly


def _with_disturbed(profile: Profile, *, index: int = 5) -> tuple[Profile, str]:
    """The profile with one record disturbed (and far too slow), and that record's label."""
    recs = list(profile.records)
    r = recs[index]
    lat = r.latency.to_dict()
    lat.update(median_ms=r.median_ms * BAD_FACTOR, samples_ms=[[v * BAD_FACTOR for v in lat["samples_ms"][0]]],
               medians_ms=[r.median_ms * BAD_FACTOR])
    recs[index] = r.replace(latency=lat, quality="disturbed", quality_reasons=["other load 1.2 cores > 0.5"])
    return Profile(devices=profile.devices, sweeps=profile.sweeps, records=recs), recs[index].label


def _failed(profile: Profile, index: int) -> Profile:
    recs = list(profile.records)
    recs[index] = recs[index].replace(status="failed", reason="boom", latency=None, throughput=None, memory={})
    return Profile(devices=profile.devices, sweeps=profile.sweeps, records=recs)


def _without(profile: Profile, index: int) -> Profile:
    recs = [r for i, r in enumerate(profile.records) if i != index]
    return Profile(devices=profile.devices, sweeps=profile.sweeps, records=recs)


@pytest.fixture(scope="module")
def clean():
    return synthetic_profile(noise=0.02, batches=(1,))


def test_state_never_says_ok_for_a_record_the_fits_leave_out(clean):
    bad, _ = _with_disturbed(clean)
    failed = _failed(clean, 3)
    assert state(bad.records[5]) == "disturbed" and not is_used(bad.records[5])
    assert state(failed.records[3]) == "failed" and not is_used(failed.records[3])
    assert state(clean.records[0]) in ("clean", "noisy") and is_used(clean.records[0])
    split = by_group(failed.records)
    assert left_out_text(e for u in split.values() for e in u.excluded) == "1 failed"


def test_groups_hold_only_usable_records(clean):
    bad, label = _with_disturbed(clean)
    assert label not in {r.label for recs in groups(bad.records).values() for r in recs}
    (u,) = by_group(bad.records).values()
    assert [e.record.label for e in u.excluded] == [label] and u.excluded[0].kind == "disturbed"


def test_predict_and_select_ignore_a_disturbed_record(clean):
    bad, _ = _with_disturbed(clean)
    counts = candidates("EfficientNet-B0", ["dWr"], [3.0])[0]
    with_bad, without = predict(bad, counts)[0], predict(_without(clean, 5), counts)[0]
    assert with_bad.latency_ms == pytest.approx(without.latency_ms) and with_bad.n == without.n
    budget = 2 * with_bad.latency_ms
    assert select(bad, "EfficientNet-B0", budget) == select(_without(clean, 5), "EfficientNet-B0", budget)


def test_the_per_strategy_table_leaves_the_disturbed_record_out_and_says_so(clean, tmp_path, cli):
    bad, label = _with_disturbed(clean)
    strategy, scale = bad.records[5].strategy, bad.records[5].scale
    rows = strategy_growth(bad.records)
    assert not [r for r in rows if (r["strategy"], r["scale"]) == (strategy, scale)]
    path = tmp_path / "bad.json"
    bad.save(path)
    code, out, _ = cli("show", str(path), "--wide")
    assert code == 0
    growth = out.split("Per strategy:", 1)[1]
    assert "left out: 1 record (1 disturbed" in " ".join(growth.split())
    record_line = next(line for line in out.splitlines() if line.startswith(label + " "))
    assert " disturbed " in record_line  # the records table marks it


def test_the_records_table_shows_the_status_of_a_record_that_is_not_ok(clean, tmp_path, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    path = tmp_path / "failed.json"
    _failed(clean, 3).save(path)
    code, out, _ = cli("show", str(path))
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith(clean.records[3].label + " "))
    assert line.split()[len(clean.records[3].label.split()) + 2] == "failed"  # model, runner, batch, quality


def test_plot_draws_a_disturbed_point_apart_and_marked(clean):
    bad, label = _with_disturbed(clean)
    (group,) = plot_groups(bad).values()
    assert label not in {r.label for r in group.used} and [e.record.label for e in group.left_out] == [label]
    pytest.importorskip("matplotlib")
    plt = pyplot()
    key = next(iter(plot_groups(bad)))
    fig = figure(plt, key, group, [])
    try:
        for ax in fig.axes[:2]:
            marked = [line for line in ax.get_lines() if line.get_marker() == LEFT_OUT_MARKER]
            assert len(marked) == 1 and "left out: 1 disturbed" in marked[0].get_label()
            assert len(marked[0].get_xdata()) == 1
            others = [line for line in ax.get_lines() if line is not marked[0]]
            assert sum(len(line.get_xdata()) for line in others) == len(group.used)
        assert "1 left out" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_compare_marks_a_disturbed_record_and_leaves_the_pair_out_of_the_geometric_means(clean, tmp_path, cli,
                                                                                          monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    bad, label = _with_disturbed(clean)
    (base,), (cur,) = sides(clean, "A"), sides(bad, "B")
    c = compare_sides(base, cur)
    row = next(r for r in c.rows if r.label == label)
    assert not row.used and row.current_quality == "disturbed"
    assert c.summary[-1]["records"] == len(c.rows) - 1 and c.summary[-1]["left_out"] == 1
    (base2,), (cur2,) = sides(_without(clean, 5), "A"), sides(_without(bad, 5), "B")
    assert c.summary[-1]["latency"]["ratio"] == pytest.approx(
        compare_sides(base2, cur2).summary[-1]["latency"]["ratio"])
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    clean.save(a)
    bad.save(b)
    code, out, err = cli("compare", str(a), str(b))
    assert code == 0, err
    lines = out.splitlines()
    marked = next(line for line in lines if line.startswith(label + " "))
    assert marked.rstrip().endswith("/ disturbed *")
    table = lines[lines.index(next(line for line in lines if line.startswith("model "))) + 2:]
    rows = [line for line in table[:len(c.rows)]]
    assert all(not line.rstrip().endswith(" ok") and "ok /" not in line for line in rows)
    assert "left out of the geometric means (1 pair" in " ".join(out.split())


def test_merge_counts_the_records_used_and_left_out(clean, tmp_path, cli):
    bad, _ = _with_disturbed(_failed(clean, 3))
    a = tmp_path / "a.json"
    bad.save(a)
    other = synthetic_profile(noise=0.02, batches=(8,))
    b = tmp_path / "b.json"
    other.save(b)
    code, out, err = cli("merge", str(a), str(b), "-o", str(tmp_path / "m.json"), "--json")
    assert code == 0, err
    (dev,) = json.loads(out)["devices"]
    u = usable(bad.records + other.records)
    assert dev["used"] == len(u.used) and dev["left_out"] == 2
    assert dev["left_out_kinds"] == {"disturbed": 1, "failed": 1}
