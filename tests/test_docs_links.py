"""Every relative link in README.md and docs/*.md leads somewhere: the file (or folder)
exists in the repository, and a `#anchor` names a heading of the page it points to, as
GitHub spells heading anchors. The README stays a front door: short, set-up first.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_MD = MarkdownIt("commonmark").enable("table")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _inline_text(token) -> str:
    return "".join(child.content for child in token.children or [] if child.type != "softbreak")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets -1, -2, ... as on GitHub."""
    tokens = _MD.parse(page.read_text(encoding="utf-8"))
    out: set[str] = set()
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        base = slug(_inline_text(tokens[i + 1]))
        name, n = base, 0
        while name in out:
            n += 1
            name = f"{base}-{n}"
        out.add(name)
    return out


def links(page: Path) -> list[str]:
    """Every link target of a page (code blocks and code spans are not links)."""
    out = []
    for token in _MD.parse(page.read_text(encoding="utf-8")):
        for child in token.children or []:
            if child.type == "link_open":
                out.append(str(child.attrs["href"]))
    return out


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)


RELATIVE_LINKS = [
    (page.relative_to(ROOT).as_posix(), target)
    for page in PAGES
    for target in links(page)
    if relative(target)
]


def test_the_slug_is_githubs() -> None:
    # Anchors as GitHub renders them for headings of this kind (code spans, dashes, quotes).
    assert slug("zombiectl watch — live view") == "zombiectl-watch--live-view"
    assert slug("Running other people's code") == "running-other-peoples-code"
    assert slug("The active probe: doctor --containers --probe") == (
        "the-active-probe-doctor---containers---probe"
    )


def test_anchors_come_from_headings_only(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# A `b` c\n\n## Same\n\n## Same\n\n```\n# not a heading\n```\n")
    assert anchors(page) == {"a-b-c", "same", "same-1"}


def test_links_skip_code(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "[a](x.md) `[b](y.md)`\n\n```\n[c](z.md)\n```\n\n| t |\n|---|\n| [d](w.md#k) |\n"
    )
    assert links(page) == ["x.md", "w.md#k"]


def test_the_pages_have_links_to_check() -> None:
    pages = {page for page, _ in RELATIVE_LINKS}
    assert "README.md" in pages and len(pages) >= 5, pages
    assert len(RELATIVE_LINKS) >= 30


@pytest.mark.parametrize(("page", "target"), RELATIVE_LINKS)
def test_relative_link_resolves(page: str, target: str) -> None:
    source = ROOT / page
    path, _, anchor = unquote(target).partition("#")
    dest = (source.parent / path).resolve() if path else source
    assert dest.is_relative_to(ROOT), f"{page}: {target} leaves the repository"
    assert dest.exists(), f"{page}: {target}: no such file"
    if anchor:
        assert dest.suffix == ".md", f"{page}: {target}: an anchor into a page that is not markdown"
        assert anchor in anchors(dest), f"{page}: {target}: no heading gives #{anchor}"


def test_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, len(lines)
    head = "\n".join(lines[:40])
    assert "make demo" in head and "make test" in head
