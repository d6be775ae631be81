"""The README and docs/: short, honest and linked.

- README.md has at most 220 lines, holds the two set-up commands byte for byte (the test command is read from
  ``.ci/run``, which runs it), and links at least four pages of docs/, indeed every page of docs/.
- The README's ``show`` excerpt is real: each of its lines is a line that command prints for the committed profile.
- No relative link in README.md or docs/*.md is dead: the file exists and a ``#anchor`` names a heading of the
  target (GitHub's slug rules).
- docs/api.md documents every name of ``hwprofile.__all__`` (as a heading or in code), and ``check``/``GateResult``.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import hwprofile

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 220
MAIN_JOB = ('python3 -m venv .venv && . .venv/bin/activate && pip install "torch==${HWPROFILE_TORCH:-2.13.0}" '
            '&& pip install -e ".[cpu,plot]" && hwprofile run')
SHOWN_PROFILE = "profiles/cpu-intel-xeon-2c__torch-ort__fp32__infer.json"

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


# ----------------------------------------------------------------------------- markdown helpers

def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def code_blocks(text: str) -> list[list[str]]:
    """The lines of every fenced code block, block by block."""
    blocks, current = [], None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def links(text: str) -> list[str]:
    """Targets of inline links and images outside code."""
    found = []
    for line in prose_lines(text):
        found += LINK.findall(INLINE_CODE.sub("", line))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text, duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(text):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def dead_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose file or heading anchor does not exist."""
    dead = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            dead.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            dead.append(f"{page.relative_to(ROOT)}: {target} (no heading with that anchor)")
    return dead


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


# ----------------------------------------------------------------------------- the README

def test_readme_fits_on_a_few_screens():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines; at most {MAX_README_LINES} (move detail to docs/)"


def _ci_test_command() -> str:
    """.ci/run's set-up line and its pytest line (the checks run between them), as one command."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in lines if line.startswith("python3 -m venv")]
    tests = [line for line in lines if line.startswith("python -m pytest")]
    assert len(commands) == 1, ".ci/run should run exactly one set-up command"
    assert len(tests) == 1, ".ci/run should run the tests once"
    return f"{commands[0]} && {tests[0]}"


@pytest.mark.parametrize("which", ["main job", "tests"])
def test_readme_holds_the_set_up_commands_unchanged(which):
    command = MAIN_JOB if which == "main job" else _ci_test_command()
    in_code = [line for block in code_blocks(README.read_text(encoding="utf-8")) for line in block]
    assert command in in_code, f"the {which} set-up command is not a line of a README code block, byte for byte"


def test_readme_links_every_docs_page():
    linked = {(README.parent / t.partition("#")[0]).resolve()
              for t in links(README.read_text(encoding="utf-8")) if t.startswith("docs/")}
    docs_pages = {p.resolve() for p in DOCS.glob("*.md")}
    assert len(linked & docs_pages) >= 4
    missing = sorted(str(p.relative_to(ROOT)) for p in docs_pages - linked)
    assert not missing, f"docs pages not linked from README.md: {missing}"


def test_readme_show_excerpt_is_what_show_prints(monkeypatch):
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    intro = next(i for i, line in enumerate(lines) if f"hwprofile show {SHOWN_PROFILE}" in line)
    excerpt = next(block for block in code_blocks("\n".join(lines[intro:])))
    from hwprofile.cli import main

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "100")  # as the README says
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["show", SHOWN_PROFILE]) == 0
    printed = set(out.getvalue().splitlines())
    shown = [line for line in excerpt if line.strip() and not line.startswith("[...")]
    assert len(shown) >= 8
    invented = [line for line in shown if line not in printed]
    assert not invented, f"README excerpt lines that `hwprofile show` does not print: {invented}"


# ----------------------------------------------------------------------------- links

@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_dead_relative_link(page):
    assert not dead_links(page)


def test_the_link_checker_finds_dead_files_and_anchors(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    (tmp_path / "b.md").write_text("# The `check` gate: A/A runs\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#the-check-gate-aa-runs) [ok](b.md#twice-1) [web](https://example.com/x.md)\n"
                    "[bad](missing.md) [bad](b.md#nope) ![bad](img/none.png) `[code](skipped.md)`\n"
                    "```\n[in a block](skipped.md)\n```\n[self](#nowhere)\n")
    assert [d.split(": ", 1)[1] for d in dead_links(page)] == [
        "missing.md (no such file)", "b.md#nope (no heading with that anchor)", "img/none.png (no such file)",
        "#nowhere (no heading with that anchor)"]


# ----------------------------------------------------------------------------- the API page

def _documented_names() -> str:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    headings = [m.group(2) for line in prose_lines(text) if (m := HEADING.match(line))]
    spans = [m.group(0) for line in prose_lines(text) for m in INLINE_CODE.finditer(line)]
    blocks = ["\n".join(block) for block in code_blocks(text)]
    return "\n".join(headings + spans + blocks)


@pytest.mark.parametrize("name", sorted(set(hwprofile.__all__) | {"check", "GateResult"}))
def test_api_page_documents_every_public_name(name):
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", _documented_names()), \
        f"hwprofile.{name} is public but docs/api.md has no heading or code naming it"


# ----------------------------------------------------------------------------- your own model

OWN_MODEL = "hwprofile run --models my.onnx"
#: a measured value the lead fills in on a quiet machine (the README's <!-- MEASURE --> block)
MEASURE = "<MEASURE>"


def _own_model_section() -> tuple[list[str], list[str]]:
    """(the console block's lines, the output block's lines) of the README's "Your own model"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Your own model", 1)[1].split("\n## ", 1)[0]
    blocks = code_blocks(section)
    assert len(blocks) >= 2, "the own-model section needs the command and what it prints"
    return blocks[0], blocks[1]


def _fields(line: str) -> list[str]:
    return [f for f in re.split(r"\s{2,}", line.strip()) if f]


def test_readme_shows_the_own_model_command_and_marks_its_output_for_measuring():
    command, _ = _own_model_section()
    assert command == [f"$ {OWN_MODEL}"]
    text = README.read_text(encoding="utf-8")
    marker = next(line for line in text.split("## Your own model", 1)[1].splitlines() if "<!-- MEASURE" in line)
    assert OWN_MODEL in marker and "hwprofile export EfficientNet-B0 -o my.onnx" in marker


def test_the_own_model_command_runs_as_written(tmp_path, monkeypatch):
    """The command parses and plans (what it would measure: the ONNX file on the ONNX Runtime runner, batch
    sizes 1 and 8), without measuring."""
    import json as _json

    from hwprofile.cli import build_parser, main
    from layer_fixtures import tiny_cnn

    args = build_parser().parse_args(OWN_MODEL.split()[1:])
    assert args.handler and args.models == "my.onnx"
    monkeypatch.chdir(tmp_path)
    tiny_cnn(tmp_path / "my.onnx", res=32)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*OWN_MODEL.split()[1:], "--plan", "--device", "cpu", "--json"]) == 0
    plan = _json.loads(out.getvalue())
    assert {(i["model"], i["batch"]) for i in plan["items"]} == {("my.onnx", 1), ("my.onnx", 8)}
    assert {i["runner"] for i in plan["items"]} <= {"ort:cpu"} and plan["items"]


def _one_model_profile(tmp_path):
    from hwprofile.profile import Profile, Record

    records = [Record(device_id="cpu-x", model="my.onnx", strategy=None, scale=1.0, batch=b, runner="ort:cpu",
                      precision="fp32", mode="infer", resolution=224, flops=385825092, params=5288548, acts=6748036,
                      status="ok", source="onnx", quality="clean",
                      latency={"median_ms": 6.0 * b, "p90_ms": 6.3 * b, "cv": 0.02, "repeats": 1,
                               "samples_ms": [[6.0 * b * (1 + 0.01 * (i % 3 - 1)) for i in range(30)]]},
                      throughput={"samples_per_s": 1000 / 6.0})
               for b in (1, 8)]
    path = tmp_path / "one.json"
    Profile(devices={"cpu-x": {"id": "cpu-x"}}, records=records).save(path)
    return path


def test_the_own_model_output_block_has_the_structure_run_prints(tmp_path, monkeypatch):
    """The block (placeholders or the lead's measurement) is what ``run`` prints for one model: its start
    line, the records table alone (one model: no verdict or growth table, no "too few clean records" row),
    the saved file, the roofline and quality lines."""
    from hwprofile.cli import main

    _, block = _own_model_section()
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["show", str(_one_model_profile(tmp_path))]) == 0
    printed = out.getvalue().splitlines()
    assert "Does runtime follow" not in out.getvalue() and "Per strategy" not in out.getvalue()
    assert "too few clean records" not in out.getvalue()
    wide = io.StringIO()
    with contextlib.redirect_stdout(wide):
        assert main(["show", str(_one_model_profile(tmp_path)), "--wide"]) == 0
    every = _fields(wide.getvalue().splitlines()[2])  # every column of the records table
    assert re.fullmatch(r"hwprofile run: 2 records on \S+ \(ort:cpu\), estimated \d+ (s|min \d+ s) "
                        r"\(a rough planning figure; run --plan lists it\)", block[0])
    assert block[1] == printed[0] and block[2] == ""  # the records table's title
    columns = _fields(block[3])
    assert columns[:3] == ["model", "runner", "batch"] and "median ms" in columns
    assert [c for c in every if c in columns] == columns and set(block[4]) <= {"-", " "}
    rows = block[5:7]
    assert [r.split()[:3] for r in rows] == [["my.onnx", "ort:cpu", "1"], ["my.onnx", "ort:cpu", "8"]]
    for row in rows:
        assert len(_fields(row)) == len(columns)
        assert all(re.fullmatch(r"[\d.]+[kMG]?|-|clean|noisy|disturbed|my\.onnx|ort:cpu|" + MEASURE, f)
                   for f in _fields(row)), row
    rest = block[7:]
    assert rest[0].startswith("[...") and "Does runtime follow" not in "\n".join(block)
    assert re.fullmatch(r"saved \S+\.json \(2 ok\)", rest[1])
    assert rest[2].startswith("roofline (near = at least 50% of a peak): ")
    assert rest[3].startswith("quality: ")
