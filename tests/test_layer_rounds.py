"""Per-layer times in rounds between clean blocks (hwprofile.profile._layer_rounds): the split of the profiled
runs, the clean latency around the rounds, and the merge of the rounds' breakdowns."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwprofile.profile import bracketed_clean, layer_rounds, merge_rounds
from hwprofile.profile._layer_rounds import MAX_ROUNDS, MIN_PER_ROUND


@pytest.mark.parametrize("iterations,expected", [(4, [4]), (19, [19]), (20, [10, 10]), (25, [13, 12]),
                                                 (30, [10, 10, 10]), (1000, [334, 333, 333])])
def test_rounds_split_the_profiled_runs(iterations, expected):
    assert layer_rounds(iterations) == expected


@given(st.integers(1, 5000))
def test_every_run_is_in_one_round_and_rounds_are_long_enough(iterations):
    split = layer_rounds(iterations)
    assert sum(split) == iterations and 1 <= len(split) <= MAX_ROUNDS
    assert len(split) == 1 or min(split) >= MIN_PER_ROUND
    assert max(split) - min(split) <= 1


def test_rounds_need_a_run():
    with pytest.raises(ValueError):
        layer_rounds(0)


@given(st.floats(1.0, 100.0), st.floats(-0.3, 0.3), st.integers(1, 3))
def test_linear_drift_cancels(start, slope, rounds):
    """Clean blocks at times 0, 1, ..., R on a machine drifting linearly: the clean latency of the rounds is the
    machine's latency halfway through them, where each round's profiled runs are on average."""
    blocks = [start * (1 + slope * t / 3) for t in range(rounds + 1)]
    mid = [start * (1 + slope * (t + 0.5) / 3) for t in range(rounds)]
    assert bracketed_clean(blocks, rounds) == pytest.approx(sum(mid) / rounds)


def test_a_round_without_a_clean_block_after_uses_the_block_before():
    assert bracketed_clean([2.0], 1) == 2.0
    assert bracketed_clean([2.0, 4.0], 2) == pytest.approx((3.0 + 4.0) / 2)
    with pytest.raises(ValueError):
        bracketed_clean([], 1)


def _round(total, rows, notes=(), iterations=10):
    return {"method": "m", "iterations": iterations, "profiled_run_ms": total, "time_source": "cpu",
            "notes": list(notes), "rows": [{"name": n, "kind": "layer", "time_ms": t, "median_ms": t, "flops": 1}
                                           for n, t in rows]}


def test_rows_and_totals_are_means_over_rounds():
    out = merge_rounds([_round(10.0, [("a", 4.0), ("b", 5.0)], ["x"]),
                        _round(12.0, [("a", 6.0)], ["x", "y"]),
                        _round(14.0, [("a", 8.0), ("b", 5.0)])])
    rows = {r["name"]: r for r in out["rows"]}
    assert [r["name"] for r in out["rows"]] == ["a", "b"]
    assert rows["a"]["time_ms"] == pytest.approx(6.0) and rows["a"]["median_ms"] == 6.0
    assert rows["b"]["time_ms"] == pytest.approx(10.0 / 3)  # absent from one round: 0 there
    assert rows["b"]["median_ms"] == 5.0 and rows["a"]["flops"] == 1
    assert out["profiled_run_ms"] == pytest.approx(12.0) and out["iterations"] == 30 and out["rounds"] == 3
    assert out["notes"] == ["x", "y"] and "3 rounds" in out["method"]


def test_one_round_is_itself():
    one = _round(10.0, [("a", 4.0)])
    assert merge_rounds([one]) == {**one, "rounds": 1}
    with pytest.raises(ValueError):
        merge_rounds([])


@given(st.lists(st.tuples(st.lists(st.floats(0.0, 50.0), min_size=1, max_size=6), st.floats(0.0, 20.0)),
                min_size=1, max_size=3))
def test_the_gap_stays_non_negative(spec):
    """Each round's rows add up to at most its profiled run (the gap row is not negative): so do the merged."""
    rounds = [_round(sum(times) + slack, [(f"l{i}", t) for i, t in enumerate(times)]) for times, slack in spec]
    out = merge_rounds(rounds)
    assert sum(r["time_ms"] for r in out["rows"]) <= out["profiled_run_ms"] + 1e-9
