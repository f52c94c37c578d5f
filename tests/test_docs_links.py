"""The documentation holds together: every relative link in the README, docs/ and the results
folders' READMEs reaches an existing file (and heading), and docs/measurement.md documents every
timing row column exactly once."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from castbench.results import COLUMNS, JSON_ONLY

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENT = ROOT / "docs" / "measurement.md"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def documents() -> list[Path]:
    return sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"),
                   *(ROOT / "results").glob("**/README.md")])  # fmt: skip


def prose(text: str) -> str:
    """``text`` without fenced code blocks, whose brackets are not links."""
    return FENCE.sub("", text)


def links(text: str) -> list[str]:
    return LINK.findall(INLINE_CODE.sub("", prose(text)))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeated headings numbered as GitHub does."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(prose(path.read_text(encoding="utf-8"))):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


def test_the_documents_link_to_something():
    assert len(documents()) >= 3
    assert len(links((ROOT / "README.md").read_text(encoding="utf-8"))) >= 5


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    assert broken_links(path) == []


def test_a_broken_link_is_caught(tmp_path: Path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# Is here\n", encoding="utf-8")
    page.write_text(
        "[ok](there.md#is-here) [gone](missing.md) [bad anchor](there.md#nowhere) "
        "`[code](ignored.md)`\n```\n[fenced](ignored.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "missing.md (no such file)",
        "there.md#nowhere (no heading #nowhere in there.md)",
    ]


def test_github_anchors():
    assert slug("Serving runtimes (`--runtime`)") == "serving-runtimes---runtime"
    assert slug("run.json") == "runjson"


def documented_columns() -> Counter[str]:
    """Names in the first cell of the column tables of docs/measurement.md (the sections
    before its run.json section), counted."""
    text = MEASUREMENT.read_text(encoding="utf-8").split("\n## run.json", 1)[0]
    names: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("| `"):
            first_cell = line.split(" | ", 1)[0]
            names.update(re.findall(r"`([a-z0-9_]+)`", first_cell))
    return names


def test_every_row_column_is_documented_once():
    documented = documented_columns()
    schema = (*COLUMNS, *JSON_ONLY)
    assert {name: documented[name] for name in schema if documented[name] != 1} == {}
    assert sorted(set(documented) - set(schema)) == []
