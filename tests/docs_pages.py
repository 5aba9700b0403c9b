"""The documentation as tests read it: docs/ pages, and the pages a page links to."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"
# [text](page.md) or [text](page.md#anchor), to a page in docs/.
LINK = re.compile(r"\]\(([\w.-]+\.md)(?:#[\w-]*)?\)")


def linked_pages(name: str) -> list[str]:
    """The docs/ pages ``name`` links to directly, except the index."""
    text = (DOCS / name).read_text(encoding="utf-8")
    return sorted({page for page in LINK.findall(text) if page != "README.md"} - {name})


def page_and_its_links(name: str) -> str:
    """The text of docs/``name`` and of the pages it links to: where a reference page sends a
    reader for what another subject's page documents (an option, a route)."""
    pages = [name, *linked_pages(name)]
    return "\n".join((DOCS / page).read_text(encoding="utf-8") for page in pages)
