"""Realistic payloads of the news services (CryptoCompare, CryptoPanic v2, RSS 2.0, Atom) for the local
servers the tests start: the same story from two outlets, a repost with tracking parameters, a
non-English item, an item about no coin, markup in fields."""

from __future__ import annotations

from typing import Any

from tests.fakes.json_service import JsonService

T0 = 1_733_500_000  # 2024-12-06T15:46:40Z
NS = 1_000_000_000


def cc_item(
    i: int, title: str, *, url: str | None = None, when: int | None = None, **extra: Any
) -> dict[str, Any]:
    row = {
        "id": str(27050400 + i),
        "guid": f"https://example.com/guid/{i}",
        "published_on": when if when is not None else T0 + 60 * i,
        "imageurl": "https://images.cryptocompare.com/news/default.png",
        "title": title,
        "url": url or f"https://newsbtc.example/news/{i}/",
        "body": extra.pop("body", "Body text."),
        "tags": "",
        "lang": extra.pop("lang", "EN"),
        "upvotes": "0",
        "downvotes": "0",
        "categories": extra.pop("categories", "BTC|Market"),
        "source_info": {"name": "NewsBTC", "img": "", "lang": "EN"},
        "source": extra.pop("source", "newsbtc"),
    }
    row.update(extra)
    return row


CC_ITEMS = [
    cc_item(1, "Bitcoin surges past $70K as ETF inflows hit record", categories="BTC|ETF|Market"),
    cc_item(2, "Curve Finance pools drained in $70M exploit", categories="CRV|DeFi"),
    cc_item(3, "El precio de Bitcoin sube con fuerza", lang="ES", categories="BTC", body="El sol brilla."),
    cc_item(4, "The week ahead: CPI data and FOMC meeting", categories="Market"),
    # Same story as item 1 from another outlet, a word changed.
    cc_item(
        5,
        "Bitcoin surges past $70K as ETF inflows hit a record",
        url="https://coindesk.example/markets/btc-70k",
        source="coindesk",
        categories="BTC",
    ),
]


def cc_news(items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "Type": 100,
        "Message": "News list successfully returned",
        "Promoted": [],
        "Data": CC_ITEMS if items is None else items,
        "RateLimit": {},
        "HasWarning": False,
    }


CC_OVER_QUOTA = {
    "Response": "Error",
    "Message": "You are over your rate limit please upgrade your account!",
    "HasWarning": False,
    "Type": 99,
    "RateLimit": {"calls_made": {"second": 1}},
    "Data": {},
}


def cp_post(
    i: int,
    title: str,
    *,
    currencies: list[str],
    votes: dict[str, int] | None = None,
    domain: str = "cointelegraph.com",
    url: str | None = None,
) -> dict[str, Any]:
    return {
        "kind": "news",
        "domain": domain,
        "source": {"title": domain.split(".")[0].title(), "region": "en", "domain": domain, "path": None},
        "title": title,
        "published_at": f"2024-12-06T16:{i:02d}:00Z",
        "slug": title.lower().replace(" ", "-")[:40],
        "id": 19876540 + i,
        "url": f"https://cryptopanic.com/news/{19876540 + i}/x",
        "original_url": url or f"https://{domain}/news/{i}",
        "created_at": f"2024-12-06T16:{i:02d}:05Z",
        "votes": {
            "negative": 0,
            "positive": 0,
            "important": 0,
            "liked": 0,
            "disliked": 0,
            "lol": 0,
            "toxic": 0,
            "saved": 0,
            "comments": 0,
            **(votes or {}),
        },
        "currencies": [
            {"code": c, "title": c, "slug": c.lower(), "url": f"https://cryptopanic.com/news/{c.lower()}/"}
            for c in currencies
        ],
    }


CP_POSTS = [
    cp_post(1, "Binance to list Jupiter (JUP) with seed tag", currencies=["JUP"], votes={"positive": 12}),
    cp_post(
        2,
        "SEC delays decision on Ether ETF options",
        currencies=["ETH"],
        votes={"important": 4, "negative": 3},
    ),
    # The CryptoCompare story again, same link with tracking parameters.
    cp_post(
        3,
        "Curve Finance pools drained in $70M exploit",
        currencies=["CRV"],
        url="https://NEWSBTC.example/news/2?utm_source=cryptopanic&utm_medium=rss",
        domain="newsbtc.example",
    ),
]


def cp_page(posts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    posts = CP_POSTS if posts is None else posts
    return {"count": len(posts), "next": None, "previous": None, "results": posts}


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Decrypt</title><link>https://decrypt.example</link><language>en-us</language>
<item><title>Solana rallies to new yearly high &lt;script&gt;alert(1)&lt;/script&gt;</title>
<link>https://decrypt.example/1/solana-rallies</link>
<description><![CDATA[<p>SOL price <b>jumps</b> <img src=x onerror=alert(1)> as memecoins boom.</p>]]></description>
<pubDate>Fri, 06 Dec 2024 16:30:00 GMT</pubDate><guid>https://decrypt.example/1</guid></item>
<item><title>Ethereum developers set date for next hard fork</title>
<link>https://decrypt.example/2/pectra-date</link><description>Pectra is scheduled.</description>
<pubDate>Fri, 06 Dec 2024 16:40:00 GMT</pubDate></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="ISO-8859-1"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>The Block</title>
<entry><title>Bybit hacked for $1.5 billion in ETH, caf\xe9 owners worried</title>
<link href="https://theblock.example/post/1"/><id>tag:theblock,1</id>
<updated>2024-12-06T16:50:00Z</updated><summary>Hackers drained a cold wallet.</summary></entry>
</feed>"""

ENTITY_BOMB = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<rss version="2.0"><channel><title>x</title><item><title>&b;</title><link>https://x.example/1</link></item></channel></rss>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title><item><title>&xxe;</title><link>https://x.example/2</link></item></channel></rss>"""


def rss_routes() -> dict[str, Any]:
    return {
        "/rss/good": lambda q: (200, {"Content-Type": "application/rss+xml; charset=utf-8"}, RSS.encode()),
        # ISO-8859-1 declared and used: valid.
        "/rss/atom": lambda q: (200, {"Content-Type": "application/atom+xml"}, ATOM.encode("latin-1")),
        "/rss/bomb": lambda q: (200, {"Content-Type": "application/rss+xml"}, ENTITY_BOMB.encode()),
        "/rss/xxe": lambda q: (200, {"Content-Type": "application/rss+xml"}, EXTERNAL_ENTITY.encode()),
        # Declared UTF-8, holds a Latin-1 byte.
        "/rss/badenc": lambda q: (
            200,
            {"Content-Type": "application/rss+xml"},
            RSS.replace("yearly", "ann\xe9e").encode("latin-1"),
        ),
        "/rss/huge": lambda q: (
            200,
            {"Content-Type": "application/rss+xml"},
            RSS.encode() + b" " * (6 * 1024 * 1024),
        ),
        "/rss/html": lambda q: (200, {"Content-Type": "text/html"}, b"<html><body>Not a feed</body></html>"),
    }


def news_server() -> JsonService:
    return JsonService(
        {
            "/data/v2/news/": lambda q: (200, {}, cc_news()),
            "/api/developer/v2/posts/": lambda q: (200, {}, cp_page()),
            **rss_routes(),
        }
    )
