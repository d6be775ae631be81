"""The data a profile holds, end to end: typed records (pydantic), the profile file and its schema, the
measurement boundary (what a runner is asked to measure and what comes back), sample statistics, the
standalone layers file, public benchmark tables as profiles, and record quality graded from what a record
stores. Reading a profile never measures.

Modules: ``_records`` (the typed fields and their ranges), ``_profile`` (versioned JSON, load and save),
``_schema`` (profiles/schema.json), ``_measurement`` (TimingConfig, Workload, Measurement), ``_stats`` (latency
statistics), ``_layer_rounds`` (per-layer times in rounds between clean blocks), ``_layer_file``
(``hwprofile layers --out``), ``_table_import`` (``hwprofile import``),
``_quality`` (clean / noisy / disturbed).
"""

from __future__ import annotations

from hwprofile.profile._layer_file import from_data as layers_file_from_data
from hwprofile.profile._layer_file import header as layers_file_header
from hwprofile.profile._layer_rounds import bracketed_clean, layer_rounds, merge_rounds
from hwprofile.profile._measurement import Measurement, TimingConfig, Workload
from hwprofile.profile._profile import SCHEMA, Profile, read_json, utc_now
from hwprofile.profile._quality import (
    DEFAULT_BACKOFF_S,
    DEFAULT_RETRIES,
    FOREIGN_CORES_DISTURBED,
    QUALITIES,
    REMEASURE,
    needs_remeasure,
    summary_line,
    with_quality,
)
from hwprofile.profile._quality import of as quality_of
from hwprofile.profile._records import (
    LAYER_COLUMNS,
    LAYER_VERSION,
    PRECISIONS,
    Device,
    LatencyStats,
    LayerBreakdown,
    MemoryReading,
    Mode,
    Precision,
    Quality,
    Record,
    RecordKey,
    Status,
    Throughput,
    check_peaks,
    describe_error,
    preferred_memory,
)
from hwprofile.profile._stats import latency_stats, percentiles, rel_ci_halfwidth, typical_times
from hwprofile.profile._table_import import (
    FIELDS,
    PRESETS,
    ImportResult,
    TableFilter,
    count_rows,
    import_table,
    summary_text,
)

__all__ = [
    "bracketed_clean", "check_peaks", "count_rows", "DEFAULT_BACKOFF_S", "DEFAULT_RETRIES", "describe_error",
    "Device", "FIELDS", "FOREIGN_CORES_DISTURBED", "import_table", "ImportResult", "latency_stats", "LatencyStats",
    "LAYER_COLUMNS", "layer_rounds", "LAYER_VERSION", "LayerBreakdown", "layers_file_from_data",
    "layers_file_header", "Measurement", "MemoryReading", "merge_rounds", "Mode", "needs_remeasure", "percentiles",
    "Precision", "PRECISIONS", "preferred_memory", "PRESETS", "Profile", "QUALITIES", "Quality", "quality_of",
    "read_json", "Record", "RecordKey", "rel_ci_halfwidth", "REMEASURE", "SCHEMA", "Status", "summary_line",
    "summary_text", "TableFilter", "Throughput", "TimingConfig", "typical_times", "utc_now", "with_quality",
    "Workload"
]
