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
            '&& pip install -e ".[cpu]" && hwprofile run')
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
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3 -m venv")]
    assert len(commands) == 1, ".ci/run should run exactly one set-up command"
    return commands[0]


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
