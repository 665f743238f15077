"""docs/ stands alone: every relative link and anchor in docs/ resolves, and nothing in the repository
points at the reference notes that live outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)
HTML_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
# the outside notes paynb was built from; their facts now live in docs/
OUTSIDE = re.compile(
    r"\.\./shared|pay-domain\.md|ops-practice\.md|notebook-jobs\.md|pay-domain §|ops-practice §"
)


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found = {slug(h) for h in HEADING.findall(text)}
    return found | set(HTML_ANCHOR.findall(text))


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.name)
def test_relative_links_resolve(page: Path):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # absolute URL
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no such section")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_docs_index_lists_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in doc_pages() if p.name != "README.md" and f"({p.name})" not in index]
    assert not missing, f"docs/README.md does not list {missing}"


TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".sql", ".txt", ".toml", ".yml", ".yaml", ".cfg", ""}
CITATION = re.compile(r"docs/([a-z0-9_-]+\.md)(?:#([a-z0-9_-]+))?")


def repo_lines():
    """(file, line number, text) of every tracked text file except this test."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    for name in filter(None, files):
        path = ROOT / name
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or name == "tests/test_docs.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            yield name, number, line


def test_nothing_points_outside_the_repository():
    hits = [f"{name}:{number}" for name, number, line in repo_lines() if OUTSIDE.search(line)]
    assert not hits, "point these at docs/<page>.md instead: " + ", ".join(hits[:20])


def test_code_citations_of_docs_resolve():
    """A comment citing ``docs/<page>.md#<section>`` names a section that exists on that page."""
    known = {p.name: anchors(p) for p in doc_pages()}
    broken = []
    for name, number, line in repo_lines():
        for page, anchor in CITATION.findall(line):
            # a page another branch is still writing is not checked here; its sections are once it lands
            if page in known and anchor and anchor not in known[page]:
                broken.append(f"{name}:{number} docs/{page}{'#' + anchor if anchor else ''}")
    assert not broken, "no such docs page or section: " + ", ".join(broken[:20])
