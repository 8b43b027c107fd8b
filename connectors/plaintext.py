"""Plain text from the HTML a platform renders (Mastodon's status ``content``).

Only text comes out: tags are dropped, entities decoded, ``<br>`` and paragraphs become line breaks,
and the content of elements that are never text (scripts, styles) is skipped. Nothing is executed
or fetched, and the result is never HTML, so it is safe to show escaped anywhere.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = {"p", "div", "blockquote", "pre", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"}
_SKIPPED = {"script", "style", "template", "head", "title"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self._paragraph()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self._paragraph()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # Source newlines are layout, not content: HTML breaks lines only with <br> and blocks.
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))

    def _paragraph(self) -> None:
        if self.parts:
            self.parts.append("\n\n")


def html_to_text(markup: str) -> str:
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    text = "".join(collector.parts)
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
