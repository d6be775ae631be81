"""Regenerate hwprofile/data/timm_models.json: which timm module (family) registers each timm model name.

    python scripts/timm_models.py TIMM              # TIMM: a checkout or a bare clone of
                                                    # huggingface/pytorch-image-models
    python scripts/timm_models.py TIMM --out FILE   # write elsewhere (default: the package's file)

A model's family is the file of ``timm/models/`` whose ``@register_model`` function defines it
(``resnet50`` -> ``resnet``). hwprofile's CNN filter (``hwprofile import --family cnn``) is a list of
these families (hwprofile/zoo/_timm.py), so the filter can be re-derived from timm's own source.
The file records the commit it was read from.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "hwprofile" / "data" / "timm_models.json"
REGISTERED = re.compile(r"@register_model\s*\n\s*def\s+(\w+)\s*\(")


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"timm_models: git {' '.join(args)} failed in {repo}: {out.stderr.strip()}")
    return out.stdout


def sources(repo: Path) -> dict[str, str]:
    """{module name: source} of timm/models/*.py, from the work tree if there is one, else from HEAD."""
    folder = repo / "timm" / "models"
    if folder.is_dir():
        return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.py"))}
    names = _git(repo, "ls-tree", "--name-only", "HEAD", "timm/models/").split()
    return {Path(n).stem: _git(repo, "show", f"HEAD:{n}") for n in names if n.endswith(".py")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timm", type=Path, help="a checkout or bare clone of huggingface/pytorch-image-models")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    families: dict[str, list[str]] = {}
    for module, text in sources(args.timm).items():
        if module.startswith("_"):
            continue
        names = REGISTERED.findall(text)
        if names:
            families[module] = sorted(set(names))
    if not families:
        raise SystemExit(f"timm_models: no @register_model functions under {args.timm}/timm/models")
    commit = _git(args.timm, "rev-parse", "HEAD").strip()
    data = {"source": {"repository": "huggingface/pytorch-image-models", "commit": commit,
                       "read": "timm/models/*.py, @register_model functions",
                       "generated_by": "scripts/timm_models.py"},
            "families": dict(sorted(families.items()))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=0, sort_keys=False) + "\n", encoding="utf-8")
    n = sum(len(v) for v in families.values())
    sys.stdout.write(f"wrote {args.out}: {n} models in {len(families)} families, timm {commit[:12]}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
