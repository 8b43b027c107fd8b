"""Plain text from the HTML a platform renders (Mastodon's status ``content``).

Only text comes out: tags are dropped, entities decoded, ``<br>`` and paragraphs become line breaks,
and the content of elements that are never text (scripts, styles) is skipped. Nothing is executed
or fetched, and the result is never HTML, so it is safe to show escaped anywhere.
"""

from __future__ import annotations

import re
from html import unescape
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
    """The text of ``markup``: the quick reading where the markup is plain, else the full parser's."""
    text = _plain_markup_text(markup)
    return _tidy(text if text is not None else _parsed_text(markup))


def _parsed_text(markup: str) -> str:
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return "".join(collector.parts)


# A tag whose attributes hold no angle brackets (quoted or not): what Mastodon renders, every time.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?>")
# Markup the quick reading leaves to the parser: comments, declarations, processing instructions and
# elements whose content is not text (the parser reads their content raw).
_UNPLAIN = re.compile(r"<[!?]|<\s*(?:" + "|".join(sorted(_SKIPPED)) + r")\b", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\r\n]+")


def _plain_markup_text(markup: str) -> str | None:
    """What the parser makes of plain markup (tags, text, entities), found with one regular expression
    (the parser costs ten times as much, and a page of 80 statuses is read on every poll); None when
    the markup is anything else, or an angle bracket is left over that the parser might read otherwise.
    tests/test_connectors_mastodon.py holds both readings equal."""
    if _UNPLAIN.search(markup):
        return None
    parts: list[str] = []
    at = 0
    for tag in _TAG.finditer(markup):
        if not _plain_data(markup[at:tag.start()], parts):
            return None
        at = tag.end()
        name = tag.group(2).lower()
        if name == "br":
            if not tag.group(1):  # <br>, <br/>; the parser ignores </br>
                parts.append("\n")
        elif name in _BLOCKS and parts and not (tag.group(0).endswith("/>") and not tag.group(1)):
            parts.append("\n\n")  # a block's start or end; the parser does nothing for <p/>
    if not _plain_data(markup[at:], parts):
        return None
    return "".join(parts)


def _plain_data(data: str, parts: list[str]) -> bool:
    if "<" in data or ">" in data:
        return False
    if data:
        parts.append(_SPACE.sub(" ", unescape(data) if "&" in data else data))
    return True


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
