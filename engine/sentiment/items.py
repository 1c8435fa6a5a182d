"""A news item as the sources deliver it, before it is scored and stored, and text clean-up for it."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from engine.sentiment.scorer import Votes

__all__ = ["MAX_SUMMARY", "MAX_TITLE", "NewsItem", "plain_text"]

MAX_TITLE = 500
MAX_SUMMARY = 2000


@dataclass(frozen=True, slots=True)
class NewsItem:
    """``published_at`` is int64 ns UTC. ``coins`` are the tickers the source itself attached
    (CryptoCompare categories, CryptoPanic currencies); tagging adds the ones found in the text."""

    source: str  # outlet, e.g. "coindesk.com" or "newsbtc"
    source_kind: str  # cryptocompare | cryptopanic | rss
    url: str
    title: str
    published_at: int
    summary: str = ""
    external_id: str | None = None
    lang: str | None = None
    coins: tuple[str, ...] = ()
    votes: Votes | None = None
    important: bool = False
    tags: tuple[str, ...] = field(default=())


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_SPACE = re.compile(r"\s+")


def plain_text(value: object, limit: int) -> str:
    """Text of a field that may hold HTML (feeds put markup and entities in titles and summaries):
    tags and scripts dropped, entities decoded, whitespace collapsed, cut to ``limit`` characters.
    The result is still untrusted: pages escape it when they show it."""
    if not isinstance(value, str) or not value:
        return ""
    text = value
    if "<" in text:
        parser = _TextOnly()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
    text = html.unescape(text)
    text = _SPACE.sub(" ", text).strip()
    return text[:limit]
