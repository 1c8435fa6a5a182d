"""RSS/Atom bytes -> news items, safely: size limit, no entity declarations, strict encoding check.

feedparser already ignores external entities; we refuse more before it runs, with a message a user can
act on: any ``<!ENTITY`` declaration (the "billion laughs" and external-entity attacks both need one),
a DOCTYPE that points at an external DTD, a body over the size limit, or bytes that are not valid in the
encoding the document declares. A refused feed is one source's error; ingestion of the others goes on.
"""

from __future__ import annotations

import calendar
import codecs
import re
import time
from typing import Any

from engine.sentiment.items import MAX_SUMMARY, MAX_TITLE, NewsItem, plain_text

__all__ = ["MAX_FEED_BYTES", "FeedRejected", "check_feed_bytes", "parse_feed"]

MAX_FEED_BYTES = 5 * 1024 * 1024
_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", re.I)
_ENTITY = re.compile(rb"<!ENTITY", re.I)
_EXTERNAL_DTD = re.compile(rb"<!DOCTYPE[^>\[]*\b(SYSTEM|PUBLIC)\b", re.I)


class FeedRejected(ValueError):
    """The feed's bytes were refused before parsing; the message says why."""


def _encoding(data: bytes, declared_by_http: str | None) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    match = _DECL.match(data[:200])
    if match:
        return match.group(1).decode("ascii").lower()
    return (declared_by_http or "utf-8").lower()


def check_feed_bytes(data: bytes, *, http_charset: str | None = None, max_bytes: int = MAX_FEED_BYTES) -> str:
    """The document's encoding when ``data`` is acceptable; raises :class:`FeedRejected` otherwise."""
    if len(data) > max_bytes:
        raise FeedRejected(f"feed is larger than {max_bytes // 1024} KiB ({len(data)} bytes); refused")
    if not data.strip():
        raise FeedRejected("feed is empty")
    head = data[:4096]
    if _ENTITY.search(data):
        raise FeedRejected("feed declares XML entities (<!ENTITY>); refused: entity expansion is unsafe")
    if _EXTERNAL_DTD.search(head):
        raise FeedRejected("feed's DOCTYPE refers to an external DTD; refused (no external resolution)")
    encoding = _encoding(data, http_charset)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FeedRejected(f"feed declares an unknown encoding {encoding!r}") from None
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FeedRejected(
            f"feed is not valid {encoding}: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None
    return encoding


def _when(entry: Any) -> int | None:
    for name in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(name)
        if parsed:
            return calendar.timegm(parsed) * 1_000_000_000
    return None


def parse_feed(
    data: bytes,
    *,
    source: str,
    fetched_at: int,
    http_charset: str | None = None,
    max_bytes: int = MAX_FEED_BYTES,
) -> list[NewsItem]:
    """Items of an RSS 0.9x/1.0/2.0 or Atom document. Raises :class:`FeedRejected` for refused bytes or a
    document that is not a feed. An entry without a date counts as published when it was fetched."""
    import feedparser

    check_feed_bytes(data, http_charset=http_charset, max_bytes=max_bytes)
    # sanitize_html keeps feedparser's own clean-up; resolve_relative_uris would need the base URL.
    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        reason = parsed.get("bozo_exception") or "no RSS or Atom elements"
        raise FeedRejected(f"not an RSS/Atom feed: {str(reason)[:160]}")
    lang = (parsed.feed.get("language") or "").split("-")[0].lower() or None
    items: list[NewsItem] = []
    for entry in parsed.entries:
        time.sleep(0)  # run in a worker thread: hand the GIL to a waiting event loop between entries
        title = plain_text(entry.get("title"), MAX_TITLE)
        link = entry.get("link") or ""
        if not title or not isinstance(link, str) or not link.startswith(("http://", "https://")):
            continue  # an entry without a title or a web link cannot be shown or deduplicated
        summary = plain_text(entry.get("summary") or entry.get("description"), MAX_SUMMARY)
        published = _when(entry)
        tags = tuple(str(t.get("term", "")) for t in entry.get("tags", ()) if t.get("term"))
        items.append(
            NewsItem(
                source=source,
                source_kind="rss",
                url=link,
                title=title,
                summary=summary,
                published_at=min(published, fetched_at) if published is not None else fetched_at,
                external_id=str(entry.get("id"))[:100] if entry.get("id") else None,
                lang=lang,
                tags=tags,
            )
        )
    return items
