"""The documentation as tests read it: the reference pages under docs/."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def reference(first: str) -> str:
    """The text of docs/``first`` followed by every other docs/ page: options and routes live on
    the reference page (cli.md, http-api.md) or on the page of the capability that adds them,
    which that reference page links to. The README is a walkthrough and does not count."""
    pages = [DOCS / first, *sorted(p for p in DOCS.glob("*.md") if p.name != first)]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)
