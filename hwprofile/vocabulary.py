"""The one source of each enumeration hwprofile uses: the typed records, the configurations, argparse's choices
and the docs take them from here. A leaf: importing it loads no other module of hwprofile, and no pydantic."""

from __future__ import annotations

from typing import Literal, get_args

#: A record's status: "ok" or why not ("skipped": not attempted by this sweep).
Status = Literal["ok", "oom", "crashed", "timeout", "unsupported", "failed", "skipped"]
STATUSES: tuple[str, ...] = get_args(Status)
#: Statuses a measurement can end in (a sweep adds "skipped" for configurations it did not attempt): a record in
#: one of them is final; ``run --resume`` does not measure it again.
MEASURED_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s != "skipped")
Precision = Literal["fp32", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
Mode = Literal["infer", "train"]
MODES: tuple[str, ...] = get_args(Mode)
#: A measurement's grade, best first (hwprofile.profile's quality grading).
Quality = Literal["clean", "noisy", "disturbed"]
QUALITIES: tuple[str, ...] = get_args(Quality)
