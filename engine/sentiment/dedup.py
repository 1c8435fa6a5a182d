"""Deduplication: the same story by URL (canonical form) and by near-identical titles across outlets."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["TITLE_SIMILARITY", "canonical_url", "same_story", "title_key", "title_words"]

# Jaccard similarity of two titles' word sets at or above which they are one story: a repost that
# changes a word or two or appends the outlet's name is joined; a rewritten headline ("SEC approves
# Bitcoin ETF" / "Bitcoin ETF approved by SEC") shares too few words and is kept as a second item.
TITLE_SIMILARITY = 0.75
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref|ref_src|source|cmpid|guccounter)$", re.I)
_NOT_WORD = re.compile(r"[^a-z0-9$]+")
# Outlet names and filler that reposts add or drop; they never decide whether two titles are one story.
_FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "of",
        "in",
        "on",
        "for",
        "and",
        "or",
        "at",
        "by",
        "as",
        "is",
        "are",
        "with",
        "from",
        "its",
        "it",
        "this",
        "that",
        "says",
        "report",
        "reports",
        "breaking",
        "update",
        "news",
    ]
)


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no ``www.``, https, no tracking parameters, no fragment, no
    trailing slash: two links to one article compare equal."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()[:500]
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not _TRACKING.match(k)))
    path = parts.path.rstrip("/") or ""
    scheme = "https" if parts.scheme in ("http", "https", "") else parts.scheme.lower()
    return urlunsplit((scheme, host, path, query, ""))[:500]


def title_words(title: str) -> frozenset[str]:
    return frozenset(w for w in _NOT_WORD.split(title.lower()) if w and w not in _FILLER)


def title_key(title: str) -> str:
    """The normalised title (words in order, filler dropped): equal keys are the same story."""
    return " ".join(w for w in _NOT_WORD.split(title.lower()) if w and w not in _FILLER)[:300]


def same_story(a: frozenset[str], b: frozenset[str], threshold: float = TITLE_SIMILARITY) -> bool:
    """Whether two titles' word sets (``title_words``) are near-identical. Short titles need all words."""
    if not a or not b:
        return False
    if min(len(a), len(b)) < 4:
        return a == b
    return len(a & b) / len(a | b) >= threshold
