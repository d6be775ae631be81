"""Reading measurements: does runtime follow activations or flops (the verdict, its design and power), the fits
behind it, comparisons between profiles, runtime predictions, roofline shares, per-layer reports and figures.
Pure functions over records and profiles: nothing here measures or prints.

Modules: ``_follows`` (the verdict), ``_regression`` and ``_fitting`` (the fits), ``_design`` and ``_power``
(what a design can decide), ``_contrast`` (equal-flops contrasts), ``_compare`` and ``_comparability`` (joins
between profiles), ``_pooling`` (one record from several processes), ``_predict``, ``_roofline``, ``_layers``
(per-layer reports), ``_plot`` (figures; matplotlib when drawing).
"""

from __future__ import annotations

from hwprofile.analysis._comparability import (
    ABSetting,
    ab_setting,
    ab_split,
    ab_text,
    comparability,
    stable_fingerprint,
    summarize,
)
from hwprofile.analysis._compare import (
    DEFAULT_BOOT,
    IDENTITY_FIELDS,
    Identity,
    Ratio,
    Side,
    ab_sides,
    compare_sides,
    identity,
    identity_dict,
    join,
    latency_ratio,
    memory_ratios,
    sides,
    throughput_ratio,
)
from hwprofile.analysis._contrast import equal_flops
from hwprofile.analysis._design import counts_of, design_se
from hwprofile.analysis._fitting import growth_exponent
from hwprofile.analysis._follows import (
    MIN_GROWTH,
    MIN_MODELS,
    GroupAnswer,
    Verdict,
    answer,
    by_group,
    group_key,
    left_out_counts,
    left_out_text,
    strategy_growth,
    usable,
)
from hwprofile.analysis._layers import (
    changed_layers,
    changes_table_rows,
    compact,
    from_raw,
    growth,
    regression_layers,
    report,
    select_peaks,
    unavailable,
    unavailable_layers,
)
from hwprofile.analysis._plot import plot_profile
from hwprofile.analysis._pooling import pool, pool_all
from hwprofile.analysis._predict import DEFAULT_SELECT_SCALES, LOO_LIMIT_PCT, model_family, predict, select
from hwprofile.analysis._regression import CONFIDENCE
from hwprofile.analysis._roofline import BYTE_MODEL, NEAR_ROOF, plot_roofline, record_peaks, roof, shares, summary_lines

__all__ = [
    "ab_setting", "ab_sides", "ab_split", "ab_text", "ABSetting", "answer", "by_group", "BYTE_MODEL",
    "changed_layers", "changes_table_rows", "compact", "comparability", "compare_sides", "CONFIDENCE", "counts_of",
    "DEFAULT_BOOT", "DEFAULT_SELECT_SCALES", "design_se", "equal_flops", "from_raw", "group_key", "GroupAnswer",
    "growth", "growth_exponent", "Identity", "identity", "identity_dict", "IDENTITY_FIELDS", "join",
    "latency_ratio", "left_out_counts", "left_out_text", "LOO_LIMIT_PCT", "memory_ratios", "MIN_GROWTH",
    "MIN_MODELS", "model_family", "NEAR_ROOF", "plot_profile", "plot_roofline", "pool", "pool_all", "predict",
    "Ratio", "record_peaks", "regression_layers", "report", "roof", "select", "select_peaks", "shares", "Side",
    "sides", "stable_fingerprint", "strategy_growth", "summarize", "summary_lines", "throughput_ratio",
    "unavailable", "unavailable_layers", "usable", "Verdict"
]
