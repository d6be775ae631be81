"""What hwprofile says about saved profiles: the summary printed first, the typed records ``show --json`` and
``check --json`` write (with their JSON Schemas), and profiles merged from several machines or runs.

Modules: ``_summary``, ``_outputs``, ``_merge``.
"""

from __future__ import annotations

from hwprofile.report._merge import PREFER, merge
from hwprofile.report._outputs import check_json, record_rows, show_json
from hwprofile.report._summary import summarize

__all__ = ["check_json", "merge", "PREFER", "record_rows", "show_json", "summarize"]
