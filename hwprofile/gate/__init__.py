"""The regression gate: pure decisions over two sets of records, thresholds calibrated on the runner itself
(A/A sessions), re-measuring suspects in interleaved rounds, and the gate as a library (``check``).

Modules: ``_decide`` (verdicts), ``_calibration`` (A/A thresholds), ``_measure`` (rounds and re-measures),
``_session`` (check and calibrate_gate).
"""

from __future__ import annotations

from hwprofile.gate._calibration import MIN_SESSIONS_TO_TIGHTEN, merge_gates
from hwprofile.gate._decide import DRIFT_FLOOR, GateOptions, GateResult, Verdict, device_type
from hwprofile.gate._measure import sweep_config_of
from hwprofile.gate._session import CalibrationResult, calibrate_gate, check

__all__ = [
    "calibrate_gate", "CalibrationResult", "check", "device_type", "DRIFT_FLOOR", "GateOptions", "GateResult",
    "merge_gates", "MIN_SESSIONS_TO_TIGHTEN", "sweep_config_of", "Verdict"
]
