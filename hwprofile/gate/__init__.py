"""The regression gate: pure decisions over two sets of records, thresholds calibrated on the runner itself
(A/A sessions), re-measuring suspects in interleaved rounds, and the gate as a library (``check``).

Modules: ``_decide`` (verdicts), ``_calibration`` (A/A thresholds), ``_measure`` (rounds and re-measures),
``_session`` (check and calibrate_gate).
"""

from __future__ import annotations

from hwprofile.gate._calibration import merge_gates, MIN_SESSIONS_TO_TIGHTEN
from hwprofile.gate._decide import device_type, DRIFT_FLOOR, GateOptions, GateResult, Verdict
from hwprofile.gate._measure import sweep_config_of
from hwprofile.gate._session import calibrate_gate, CalibrationResult, check

__all__ = [
    "calibrate_gate", "CalibrationResult", "check", "device_type", "DRIFT_FLOOR", "GateOptions", "GateResult",
    "merge_gates", "MIN_SESSIONS_TO_TIGHTEN", "sweep_config_of", "Verdict"
]
