"""``profiles/schema.json``: the JSON Schema of a profile, generated from the typed models.

Regenerate with ``python -m hwprofile.profile._schema`` (a test fails when the committed file is stale).
The schema describes version 2 and accepts version 1 files too: their records are a subset of
version 2's (version 1 lacks only optional fields), and readers migrate them on load.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hwprofile.atomic import write_text
from hwprofile.profile._profile import READABLE_VERSIONS, Profile

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "profiles" / "schema.json"


def json_schema() -> dict:
    schema = Profile.model_json_schema(by_alias=True, mode="validation")
    props = schema["properties"]
    props["schema_version"] = {"title": "Schema Version", "enum": list(READABLE_VERSIONS),
                               "description": "2 (written by this hwprofile); 1 is read through a migration"}
    schema["required"] = sorted(set(schema.get("required", [])) | {"schema", "schema_version", "devices",
                                                                    "sweeps", "records"})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://hwprofile.invalid/profiles/schema.json",
            "description": "A hwprofile device profile (generated from hwprofile.profile; do not edit by hand: "
                           "python -m hwprofile.profile._schema)", **schema}


def render() -> str:
    return json.dumps(json_schema(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else SCHEMA_PATH
    write_text(path, render(), replace=True, what="schema")
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
