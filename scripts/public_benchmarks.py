"""Print docs/results.md's "What public benchmarks say" block from timm's published inference benchmarks.

    python scripts/public_benchmarks.py TIMM                 # a checkout or bare clone of
                                                             # huggingface/pytorch-image-models: one file per device
    python scripts/public_benchmarks.py A.csv B.csv ... [--commit SHA]   # these files

Each file is imported as ``hwprofile import --preset timm --family cnn --batch main`` does (one device per
file, named from the file name), and :func:`answer` asks hwprofile's analysis whether runtime follows
activations or flops on that device. The output is markdown: one row per device, the counting
conventions' effect on the zoo models the files hold, and the source files with their sha256 and commit.
Nothing here measures; the same files give the same block.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from hwprofile.analysis import CONFIDENCE
from hwprofile.analysis import answer as answer_groups
from hwprofile.profile import ImportResult, Record, TableFilter, count_rows, import_table
from hwprofile.profile._table_import import timm_file_settings

PATTERN = re.compile(r"benchmark-infer-(?P<prec>[a-z0-9_]+)-(?P<layout>nchw|nhwc)-pt(?P<torch>\d+)-"
                     r"(?P<where>cu\d+|cpu)-(?P<device>[a-z0-9_]+?)(?P<dynamo>-dynamo)?(?:\.\w+)*\.csv$")


# ---------------------------------------------------------------------------------------- the one verdict call

def answer(records: list[Record]) -> dict:
    """Whether runtime follows activations or flops on one device: the script's only call to the analysis.

    Returns ``n``, ``verdict``, ``verdict_ci`` (the interval of delta = beta_acts - beta_flops, on which the
    verdict rests; ``basis`` says it in words), the elasticities of latency in flops and in acts from the joint
    fit with their intervals (``e_flops``, ``e_flops_ci``, ``e_acts``, ``e_acts_ci``), the share of time that
    scales with activations from the additive fit (``acts_share``, ``acts_share_ci``) and ``method``, one
    sentence naming the estimators and the intervals: ``hwprofile.analysis.answer``, as ``show`` prints it.
    """
    rows = answer_groups(records)
    if len(rows) != 1:
        raise SystemExit(f"public_benchmarks: expected one group of records per file, got {len(rows)}")
    a = rows[0]
    ci = (lambda e: None if e is None else [e.low, e.high])
    val = (lambda e: None if e is None else e.value)
    share = a.share_acts
    return {"n": a.n_used, "verdict": a.verdict.value, "verdict_ci": ci(a.delta),
            "e_flops": val(a.beta_flops), "e_flops_ci": ci(a.beta_flops),
            "e_acts": val(a.beta_acts), "e_acts_ci": ci(a.beta_acts),
            "acts_share": val(share), "acts_share_ci": ci(share),
            "basis": a.basis,
            "method": (f"hwprofile.analysis.answer: the joint fit log t = k + b_flops log flops + b_acts log acts "
                       f"over the device's CNN rows (ordinary least squares, equal weights: an imported row has "
                       f"no spread), {CONFIDENCE:.0%} t-intervals, the verdict's interval being that of "
                       f"delta = b_acts - b_flops (docs/measurement.md, 'The answer'); the share of time with "
                       f"activations from the non-negative additive fit t = a*flops + b*acts + c in relative "
                       f"error, with its bootstrap interval. Across a zoo of architectures the residuals are "
                       f"mostly model misfit, not noise: read the intervals as conditional on the fit.")}


# ---------------------------------------------------------------------------------------- the files

def _git(repo: Path, *args: str) -> bytes:
    """git's output as bytes: a file shown from a bare clone keeps its exact bytes (and its sha256)."""
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    if out.returncode:
        raise SystemExit(f"public_benchmarks: git {' '.join(args)} failed in {repo}: "
                         f"{out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def _key(name: str) -> tuple | None:
    m = PATTERN.search(name)
    if not m or m["prec"] not in ("amp", "fp32"):
        return None
    return m["device"].removeprefix("rtx"), (int(m["torch"]), m["layout"] == "nchw", not m["dynamo"], name)


def pick(names: list[str]) -> list[str]:
    """One file per device: amp or fp32 (no bf16), the newest torch, NCHW and eager before NHWC and dynamo."""
    best: dict[str, tuple] = {}
    for name in names:
        key = _key(Path(name).name)
        if key and (key[0] not in best or key[1] > best[key[0]][1]):
            best[key[0]] = (name, key[1])
    return [best[d][0] for d in sorted(best, key=lambda d: (timm_file_settings(best[d][0])["device_type"] == "cpu", d))]


def from_checkout(repo: Path, out_dir: Path) -> tuple[list[Path], str]:
    """The chosen result files of a timm checkout (work tree or bare clone), and its commit."""
    commit = _git(repo, "rev-parse", "HEAD").decode().strip()
    if (repo / "results").is_dir():
        found = sorted((repo / "results").glob("benchmark-infer-*.csv"))
        return [Path(p) for p in pick([str(p) for p in found])], commit
    names = [n for n in _git(repo, "ls-tree", "--name-only", "HEAD", "results/").decode().split()
             if Path(n).name.startswith("benchmark-infer-")]
    files = []
    for name in pick(names):
        path = out_dir / Path(name).name
        path.write_bytes(_git(repo, "show", f"HEAD:{name}"))
        files.append(path)
    return files, commit


def device_name(path: Path) -> str:
    m = PATTERN.search(path.name)
    return m["device"].removeprefix("rtx") if m else path.stem


# ---------------------------------------------------------------------------------------- the block

def _ci(v: list[float] | None) -> str:
    return "" if not v else f" [{v[0]:.2f}, {v[1]:.2f}]"


def _num(v: float | None, ci: list[float] | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{v:.0%}" + ("" if not ci else f" [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]")
    return f"{v:.2f}{_ci(ci)}"


def device_row(path: Path, result: ImportResult) -> dict:
    m = PATTERN.search(path.name)
    a = answer(result.records)
    src = result.source
    return {"device": device_name(path), "kind": "CPU" if m and m["where"] == "cpu" else "GPU",
            "setting": (f"{m['prec']}, pt{m['torch']}" + (", dynamo" if m["dynamo"] else "") if m else "-"),
            "batch": src["rows"].get("batch"), "rows": src["rows"]["rows"], **a}


def render(files: list[Path], commit: str | None) -> str:
    results = [(p, import_table(p, device_name=device_name(p), preset="timm",
                                filters=TableFilter(families=("cnn",), batch="main"))) for p in files]
    rows = [device_row(p, r) for p, r in results]
    out = ["| device | | measured with | batch | CNN rows used (of the file's) | verdict [δ CI] | β flops [CI] | "
           "β acts [CI] | share of time with acts [CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = "-" if r["verdict"] is None else f"**{r['verdict']}**{_ci(r['verdict_ci'])}"
        out.append(f"| {r['device']} | {r['kind']} | {r['setting']} | {r['batch']} | {r['n']} (of {r['rows']}) | "
                   f"{verdict} | {_num(r['e_flops'], r['e_flops_ci'])} | {_num(r['e_acts'], r['e_acts_ci'])} | "
                   f"{_num(r['acts_share'], r['acts_share_ci'], pct=True)} |")
    out += ["", "Method: " + rows[0]["method"] + " The verdict's interval is of:", ""]
    out += [f"- {r['device']}: {r['basis'] or '-'}" for r in rows]
    out.append("")
    counts = {c["model"]: c for c in count_rows(results[0][1].records)
              if c["resolution"] == c["train_res"]}
    if counts:
        out += [f"Counting conventions on the zoo models of `{files[0].name}` at their training resolution "
                "(timm's count / hwprofile's):", "",
                "| timm model | zoo model | px | flops | params | acts |", "|---|---|---|---|---|---|"]
        for c in sorted(counts.values(), key=lambda c: c["flops_hwprofile"]):
            out.append(f"| {c['model'].split('@')[0]} | {c['zoo_model']} | {c['resolution']} | "
                       + " | ".join("-" if c[f"{m}_ratio"] is None else f"{c[f'{m}_ratio']:.3f}"
                                    for m in ("flops", "params", "acts")) + " |")
        out.append("")
    out += [f"Source: huggingface/pytorch-image-models `results/`, commit `{commit or 'not given'}`:", ""]
    out += [f"- `{p.name}` (sha256 `{r.source['sha256'][:16]}...`, {r.source['rows']['rows']} rows)"
            for p, r in results]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="timm result CSV files, or one timm checkout")
    parser.add_argument("--commit", help="the timm commit the CSV files come from (read from a checkout)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if len(args.inputs) == 1 and args.inputs[0].is_dir():
            files, commit = from_checkout(args.inputs[0], Path(tmp))
        else:
            missing = [str(p) for p in args.inputs if not p.is_file()]
            if missing:
                raise SystemExit(f"public_benchmarks: not files: {', '.join(missing)}")
            files, commit = list(args.inputs), args.commit
        if not files:
            raise SystemExit("public_benchmarks: no benchmark-infer-*.csv file (amp or fp32) to read")
        sys.stdout.write(render(files, commit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
