"""The README stays a short entry point and every link in it and in docs/ leads somewhere:
under 12 KB, the layout near the top, every relative link and image resolving, every `make X`
it names a Makefile target, every measured-figures row with its command and its docs file."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _markdown_files() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("*/README.md"))]


def test_readme_is_short_with_the_layout_near_the_top():
    text = README.read_text()
    assert len(text.encode()) < 12 * 1024, f"README.md is {len(text.encode())} bytes (limit 12 KB)"
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## The two commands", "## Layout"], headings


def test_every_relative_link_resolves():
    broken = []
    for md in _markdown_files():
        for target in LINK.findall(md.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_every_make_target_named_in_the_docs_exists():
    targets = set(re.findall(r"(?m)^([a-z][\w-]*):", (ROOT / "Makefile").read_text()))
    named = set()
    for md in _markdown_files():
        named |= set(re.findall(r"`make ([a-z][\w-]*[a-z0-9])`", md.read_text()))
    assert named, "no make target named anywhere"
    assert not named - targets, f"named but not in the Makefile: {sorted(named - targets)}"


def test_every_measured_figure_has_a_command_and_a_docs_file():
    text = README.read_text()
    table = text.split("## Measured figures", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith(("| area", "| ---"))]
    assert len(rows) >= 6, rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, row
        assert cells[2].startswith("`"), f"no command: {row}"
        assert LINK.search(cells[3]), f"no docs link: {row}"
