"""News clients: CryptoCompare news, CryptoPanic v2 and any RSS/Atom feed, over the feeds' HTTP client
(per-service rate limit, retries with backoff, ``Retry-After``, one error tree, keys masked).

Each ``parse_*`` is pure (payload -> items) and raises :class:`engine.feeds.http.BadResponse` on schema
drift or :class:`~engine.feeds.http.ServiceError` / :class:`~engine.feeds.http.RateLimited` for errors the
service reports inside an HTTP 200. Items that are individually malformed are skipped and counted.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from engine.feeds.http import BadResponse, FeedHttpClient, RateLimited, ServiceError
from engine.sentiment.coins import source_tickers
from engine.sentiment.feedxml import FeedRejected, parse_feed
from engine.sentiment.items import MAX_SUMMARY, MAX_TITLE, NewsItem, plain_text
from engine.sentiment.scorer import Votes

__all__ = [
    "CRYPTOCOMPARE_URL",
    "CRYPTOPANIC_URL",
    "DEFAULT_RSS_FEEDS",
    "CryptoCompareNews",
    "CryptoPanicNews",
    "NewsSource",
    "RssNews",
    "parse_cryptocompare",
    "parse_cryptopanic",
]

CRYPTOCOMPARE_URL = "https://min-api.cryptocompare.com"
CRYPTOPANIC_URL = "https://cryptopanic.com"
NS = 1_000_000_000

# Well-known outlets' public feeds, used when sentiment.yaml sets `default_feeds: true` (the default).
# Users replace or extend the list in sentiment.yaml; docs/sentiment.md lists them.
DEFAULT_RSS_FEEDS: dict[str, str] = {
    "coindesk.com": "https://www.coindesk.com/arc/outboundfeeds/rss/",
    "cointelegraph.com": "https://cointelegraph.com/rss",
    "decrypt.co": "https://decrypt.co/feed",
    "theblock.co": "https://www.theblock.co/rss.xml",
    "bitcoinmagazine.com": "https://bitcoinmagazine.com/.rss/full/",
    "cryptoslate.com": "https://cryptoslate.com/feed/",
    "newsbtc.com": "https://www.newsbtc.com/feed/",
    "bitcoinist.com": "https://bitcoinist.com/feed/",
    "cryptopotato.com": "https://cryptopotato.com/feed/",
    "u.today": "https://u.today/rss",
}


class NewsSource(Protocol):
    name: str
    kind: str
    skipped: int  # malformed items dropped by the last fetch

    async def fetch(self, since_ns: int | None, now_ns: int) -> list[NewsItem]: ...


def _split(url: str) -> tuple[str, dict[str, str]]:
    """A URL and its query as parameters: the feeds client always passes ``params``, and httpx then
    replaces a URL's own query (``?format=rss``, a ``next`` link's ``page=2``) instead of merging it."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), dict(
        parse_qsl(parts.query, keep_blank_values=True)
    )


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


# -- CryptoCompare ------------------------------------------------------------------------------------


def parse_cryptocompare(payload: Any, service: str = "cryptocompare") -> tuple[list[NewsItem], int]:
    """``/data/v2/news/`` -> (items, skipped)."""
    if not isinstance(payload, Mapping):
        raise BadResponse(service, f"news: expected a JSON object, got {type(payload).__name__}")
    if payload.get("Response") == "Error" or payload.get("Type") == 99:
        message = str(payload.get("Message") or "error without a message")[:200]
        if "rate limit" in message.lower():
            raise RateLimited(service, f"HTTP 200 error: {message}")
        raise ServiceError(service, f"HTTP 200 error: {message}")
    data = payload.get("Data")
    if not isinstance(data, list):
        raise BadResponse(
            service, f"news: 'Data' is {type(data).__name__}, expected a list (schema changed?)"
        )
    items: list[NewsItem] = []
    skipped = 0
    for raw in data:
        published = _seconds(raw.get("published_on")) if isinstance(raw, Mapping) else None
        title = plain_text(raw.get("title"), MAX_TITLE) if isinstance(raw, Mapping) else ""
        url = raw.get("url") if isinstance(raw, Mapping) else None
        if published is None or not title or not isinstance(url, str) or not url.startswith("http"):
            skipped += 1
            continue
        categories = source_tickers(str(raw.get("categories") or ""))
        items.append(
            NewsItem(
                source=str(raw.get("source") or "cryptocompare")[:100],
                source_kind="cryptocompare",
                url=url,
                title=title,
                summary=plain_text(raw.get("body"), MAX_SUMMARY),
                published_at=published * NS,
                external_id=str(raw.get("id"))[:100] if raw.get("id") is not None else None,
                lang=str(raw.get("lang") or "EN").lower()[:8],
                coins=categories,
            )
        )
    if data and not items:
        raise BadResponse(service, f"news: none of {len(data)} items has published_on, title and url")
    return items, skipped


@dataclass
class CryptoCompareNews:
    """``pages`` > 1 walks back in time (``lTs`` = the oldest item's time - 1) to backfill history; the
    walk stops at ``since_ns``, at an empty page, or after ``pages`` requests."""

    http: FeedHttpClient
    key: str | None = None
    categories: str | None = None
    name: str = "cryptocompare"
    kind: str = "cryptocompare"
    skipped: int = 0
    pages: int = 1

    async def fetch(self, since_ns: int | None, now_ns: int) -> list[NewsItem]:
        params: dict[str, Any] = {"lang": "EN"}
        if self.categories:
            params["categories"] = self.categories
        headers = {"authorization": f"Apikey {self.key}"} if self.key else None
        out: list[NewsItem] = []
        self.skipped = 0
        for _ in range(max(1, self.pages)):
            # The trailing slash matters: without it the service answers a redirect page.
            payload = await self.http.get_json("/data/v2/news/", params, headers)
            items, skipped = parse_cryptocompare(payload, self.http.service)
            self.skipped += skipped
            fresh = [i for i in items if since_ns is None or i.published_at > since_ns]
            out.extend(fresh)
            if not items or len(fresh) < len(items):
                break
            oldest = min(i.published_at for i in items) // NS
            if params.get("lTs") is not None and oldest >= params["lTs"]:
                break  # the service ignored lTs: no older page to ask for
            params["lTs"] = oldest - 1
        return out


# -- CryptoPanic v2 -----------------------------------------------------------------------------------


def _iso_ns(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return int(when.timestamp()) * NS


def parse_cryptopanic(payload: Any, service: str = "cryptopanic") -> tuple[list[NewsItem], int]:
    """``/api/developer/v2/posts/`` -> (items, skipped)."""
    if not isinstance(payload, Mapping):
        raise BadResponse(service, f"posts: expected a JSON object, got {type(payload).__name__}")
    results = payload.get("results")
    if results is None and ("info" in payload or "status" in payload):
        raise ServiceError(
            service, f"HTTP 200 error: {str(payload.get('info') or payload.get('status'))[:200]}"
        )
    if not isinstance(results, list):
        raise BadResponse(
            service, f"posts: 'results' is {type(results).__name__}, expected a list (schema changed?)"
        )
    items: list[NewsItem] = []
    skipped = 0
    for raw in results:
        if not isinstance(raw, Mapping) or raw.get("kind", "news") != "news":
            skipped += not isinstance(raw, Mapping)
            continue
        published = _iso_ns(raw.get("published_at"))
        title = plain_text(raw.get("title"), MAX_TITLE)
        url = raw.get("original_url") or raw.get("url")
        if not url and raw.get("id") is not None:
            url = f"https://cryptopanic.com/news/{raw.get('id')}/{raw.get('slug') or ''}"
        if published is None or not title or not isinstance(url, str):
            skipped += 1
            continue
        votes = raw.get("votes") if isinstance(raw.get("votes"), Mapping) else {}
        source = raw.get("source") if isinstance(raw.get("source"), Mapping) else {}
        currencies = raw.get("currencies") if isinstance(raw.get("currencies"), list) else []
        counts = {k: _seconds(votes.get(k)) or 0 for k in ("positive", "negative", "important")}
        items.append(
            NewsItem(
                source=str(source.get("domain") or "cryptopanic")[:100],
                source_kind="cryptopanic",
                url=url,
                title=title,
                summary=plain_text(raw.get("description"), MAX_SUMMARY),
                published_at=published,
                external_id=str(raw.get("id"))[:100] if raw.get("id") is not None else None,
                lang=str(raw.get("language") or "en").lower()[:8] if raw.get("language") else None,
                coins=tuple(str(c.get("code", "")).lower() for c in currencies if isinstance(c, Mapping)),
                votes=Votes(**counts),
                important=counts["important"] > 0,
            )
        )
    return items, skipped


@dataclass
class CryptoPanicNews:
    """``pages`` > 1 follows the answer's ``next`` link (older posts), stopping at ``since_ns``."""

    http: FeedHttpClient
    token: str
    filter: str | None = None
    currencies: str | None = None
    name: str = "cryptopanic"
    kind: str = "cryptopanic"
    skipped: int = 0
    pages: int = 1

    async def fetch(self, since_ns: int | None, now_ns: int) -> list[NewsItem]:
        params: dict[str, Any] = {"auth_token": self.token, "kind": "news", "public": "true"}
        if self.filter:
            params["filter"] = self.filter
        if self.currencies:
            params["currencies"] = self.currencies
        path = "/api/developer/v2/posts/"
        out: list[NewsItem] = []
        self.skipped = 0
        for _ in range(max(1, self.pages)):
            payload = await self.http.get_json(path, params)
            items, skipped = parse_cryptopanic(payload, self.http.service)
            self.skipped += skipped
            fresh = [i for i in items if since_ns is None or i.published_at > since_ns]
            out.extend(fresh)
            following = payload.get("next") if isinstance(payload, Mapping) else None
            if not fresh or len(fresh) < len(items) or not isinstance(following, str):
                break
            # The next link carries every parameter (the token too: the client masks it in logs).
            path, params = _split(following)
        return out


# -- RSS / Atom ---------------------------------------------------------------------------------------

_LAST_RESPONSE: contextvars.ContextVar[httpx.Response | None] = contextvars.ContextVar(
    "rss_response", default=None
)


async def _keep_response(response: httpx.Response) -> None:
    # The feeds client hands back decoded text; a feed's bytes must be checked in the encoding the
    # document declares, so the raw response is kept for this task.
    _LAST_RESPONSE.set(response)


@dataclass
class RssNews:
    http: FeedHttpClient
    url: str
    name: str
    kind: str = "rss"
    skipped: int = 0

    def __post_init__(self) -> None:
        hooks = self.http._client.event_hooks
        if _keep_response not in hooks["response"]:
            hooks["response"].append(_keep_response)

    async def fetch(self, since_ns: int | None, now_ns: int) -> list[NewsItem]:
        await self.http.get_text(*_split(self.url))
        response = _LAST_RESPONSE.get()
        if response is None:  # pragma: no cover - the hook runs for every answer
            raise BadResponse(self.http.service, f"{self.url}: no answer kept")
        await response.aread()
        try:
            # feedparser is CPU work (tens of ms for a long feed): off the bots' event loop.
            items = await asyncio.to_thread(
                parse_feed,
                response.content,
                source=self.name,
                fetched_at=now_ns,
                http_charset=response.charset_encoding,
                max_bytes=self.http.max_bytes,
            )
        except FeedRejected as exc:
            raise BadResponse(self.http.service, f"{self.url}: {exc}") from None
        return [i for i in items if since_ns is None or i.published_at > since_ns]
