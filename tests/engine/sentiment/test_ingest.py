"""News ingestion through local servers speaking CryptoCompare's, CryptoPanic's and RSS/Atom wire
formats: parsing, dedup across sources, coin tagging, the error shapes, safe XML, and the store rows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.feeds.http import BadResponse, FeedHttpClient, RateLimited, ServerError, ServiceError, Unreachable
from engine.feeds.store import read_series
from engine.observability import setup_logging
from engine.sentiment.config import SentimentConfig, SourceConfig
from engine.sentiment.pipeline import NewsPipeline, available_at
from engine.sentiment.sources import CryptoCompareNews, CryptoPanicNews, RssNews
from engine.store.models import NewsItem as NewsRow
from tests.engine.sentiment.news_fakes import CC_OVER_QUOTA, NS, T0, cc_item, cc_news, news_server
from tests.fakes.json_service import JsonService

NOW = (T0 + 3600) * NS
TOKEN = "cp-token-0123456789abcdef"


def pipeline(url: str, sessions, *sources: SourceConfig, **kw) -> NewsPipeline:
    config = SentimentConfig(sources=sources, default_feeds=False, ingest_lag="5m")
    return NewsPipeline(
        config,
        sessions,
        environ={"CP_TOKEN": TOKEN},
        clock=lambda: NOW,
        retries=kw.pop("retries", 1),
        backoff=0.01,
        **kw,
    )


def all_sources(url: str) -> tuple[SourceConfig, ...]:
    return (
        SourceConfig(kind="cryptocompare", base_url=url),
        SourceConfig(kind="cryptopanic", base_url=url, key="env:CP_TOKEN"),
        SourceConfig(kind="rss", name="decrypt", url=f"{url}/rss/good"),
        SourceConfig(kind="rss", name="theblock", url=f"{url}/rss/atom"),
        SourceConfig(kind="rss", name="bomb", url=f"{url}/rss/bomb"),
        SourceConfig(kind="rss", name="xxe", url=f"{url}/rss/xxe"),
        SourceConfig(kind="rss", name="badenc", url=f"{url}/rss/badenc"),
        SourceConfig(kind="rss", name="huge", url=f"{url}/rss/huge"),
        SourceConfig(kind="rss", name="notafeed", url=f"{url}/rss/html"),
    )


async def rows(sessions) -> dict[str, NewsRow]:
    async with sessions() as session:
        return {r.title: r for r in (await session.execute(select(NewsRow))).scalars()}


async def test_every_source_into_the_store_once(sessions, tmp_path) -> None:
    logs = setup_logging(tmp_path / "logs", mode="paper", console="none")
    try:
        with news_server() as server:
            news = pipeline(server.url, sessions, *all_sources(server.url))
            report = await news.ingest()
            await news.aclose()
    finally:
        logs.flush()
        logs.close()
    api_log = (tmp_path / "logs" / "api_calls.jsonl").read_text()
    # Bad feeds are refused with a clear reason; the good ones went on.
    assert "declares XML entities" in report.errors["bomb"]
    assert "declares XML entities" in report.errors["xxe"]
    assert "not valid utf-8: byte 0xe9" in report.errors["badenc"]
    assert "larger than" in report.errors["huge"]
    assert "not an RSS/Atom feed" in report.errors["notafeed"]
    assert report.fetched == {"cryptocompare": 5, "cryptopanic": 3, "decrypt": 2, "theblock": 1}
    # CryptoPanic's copy of the Curve story (same URL, tracking params) and CoinDesk's near-identical
    # title of the $70K story are merged into the first rows.
    assert report.same_url == 1 and report.same_story == 1 and report.added == 9
    stored = await rows(sessions)
    assert len(stored) == 9
    surge = stored["Bitcoin surges past $70K as ETF inflows hit record"]
    assert surge.also_from == ["coindesk"] and surge.coins == ["btc"]
    assert surge.local_score > 0.3 and "ETF inflows" in surge.local_why
    curve = stored["Curve Finance pools drained in $70M exploit"]
    assert curve.also_from == ["newsbtc.example"] and curve.local_score < -0.3 and curve.events == ["hack"]
    # Times: published, fetched, available = published + 5 min lag or the live fetch, whichever is later.
    assert surge.published_at == (T0 + 60) * NS and surge.fetched_at == NOW
    assert surge.available_at == NOW
    spanish = stored["El precio de Bitcoin sube con fuerza"]
    assert spanish.lang == "es" and spanish.coins == ["btc"]  # "El sol brilla" in the body is not SOL
    assert stored["The week ahead: CPI data and FOMC meeting"].coins == []
    assert stored["The week ahead: CPI data and FOMC meeting"].events == ["macro"]
    # Markup in feed fields is text: tags and scripts gone, the words kept.
    sol = stored["Solana rallies to new yearly high"]
    assert "<" not in sol.title and "onerror" not in sol.summary and "jumps" in sol.summary
    assert sol.coins == ["sol"] and sol.source == "decrypt"
    bybit = stored["Bybit hacked for $1.5 billion in ETH, caf\xe9 owners worried"]
    assert bybit.coins == ["eth"] and bybit.events == ["hack"]
    jup = stored["Binance to list Jupiter (JUP) with seed tag"]
    assert jup.events == ["listing"] and jup.local_score > 0.2  # 12 positive votes tilt it too
    # The CryptoPanic token went in the query, and never into a log line or an error.
    assert any(r.query.get("auth_token") == TOKEN for r in server.requests)
    # The call is logged, never with the token (masked by the client or the log filter, whichever runs first).
    assert "cryptopanic" in api_log and TOKEN not in api_log
    assert all(TOKEN not in e for e in report.errors.values())
    # Point-in-time observations per coin and for all items.
    async with sessions() as session:
        btc = await read_series(session, "news.btc.item")
        hacks = await read_series(session, "events.eth.hack")
        everything = await read_series(session, "news.all.item")
    assert len(btc) == 2 and len(hacks) == 1 and len(everything) == 9


async def test_a_second_fetch_stores_nothing_twice(sessions) -> None:
    with news_server() as server:
        news = pipeline(server.url, sessions, *all_sources(server.url)[:4])
        first = await news.ingest()
        second = await news.ingest()
        await news.aclose()
    assert first.added == 9 and second.added == 0
    assert second.same_url + second.same_story == 11


def test_available_at_rule() -> None:
    lag, window = 300 * NS, 6 * 3600 * NS
    # Live: fetched a minute after publication, known at published + lag.
    assert available_at(0, 60 * NS, lag_ns=lag, live_window_ns=window) == lag
    # Live but fetched late (poll every 15 min): not before the fetch.
    assert available_at(0, 900 * NS, lag_ns=lag, live_window_ns=window) == 900 * NS
    # Backfill of history: published + lag, else history could never be backtested.
    assert available_at(0, 10 * 86400 * NS, lag_ns=lag, live_window_ns=window) == lag


def client(url: str, service: str = "cryptocompare", **kw) -> FeedHttpClient:
    return FeedHttpClient(service, url, per_minute=600, retries=kw.pop("retries", 2), backoff=0.01, **kw)


async def test_cryptocompare_http_200_errors() -> None:
    with JsonService({"/data/v2/news/": lambda q: (200, {}, CC_OVER_QUOTA)}) as server:
        http = client(server.url, retries=0)
        with pytest.raises(RateLimited, match="over your rate limit"):
            await CryptoCompareNews(http).fetch(None, NOW)
        server.routes["/data/v2/news/"] = lambda q: (
            200,
            {},
            {"Response": "Error", "Message": "fsym is a required param.", "Type": 2},
        )
        with pytest.raises(ServiceError, match="fsym is a required param"):
            await CryptoCompareNews(http).fetch(None, NOW)
        await http.aclose()


async def test_cryptocompare_429_with_and_without_retry_after_then_success() -> None:
    with JsonService({"/data/v2/news/": lambda q: (200, {}, cc_news())}) as server:
        http = client(server.url, retries=2)
        server.fail("/data/v2/news/", 429, {"Message": "slow down"}, headers={"Retry-After": "0.2"})
        server.fail("/data/v2/news/", 429, "Too Many Requests")
        items = await CryptoCompareNews(http, key="cc-key-123456").fetch(None, NOW)
        assert len(items) == 5 and len(server.requests) == 3
        # Retry-After was honoured: the second try waited at least 0.2 s.
        assert server.requests[1].time - server.requests[0].time >= 0.19
        assert server.requests[0].headers.get("authorization") == "Apikey cc-key-123456"
        await http.aclose()


async def test_5xx_then_success_and_5xx_exhausted() -> None:
    with JsonService({"/data/v2/news/": lambda q: (200, {}, cc_news())}) as server:
        http = client(server.url, retries=1)
        server.fail("/data/v2/news/", 502, "<html>Bad gateway</html>")
        assert len(await CryptoCompareNews(http).fetch(None, NOW)) == 5
        server.fail("/data/v2/news/", 503, "down")
        server.fail("/data/v2/news/", 500, "down")
        with pytest.raises(ServerError, match="HTTP 500"):
            await CryptoCompareNews(http).fetch(None, NOW)
        await http.aclose()


async def test_timeout_truncated_and_drifted_answers() -> None:
    with JsonService({"/data/v2/news/": lambda q: (200, {}, cc_news())}) as server:
        http = client(server.url, retries=0, timeout=0.2)
        server.delay = 0.5
        with pytest.raises(Unreachable, match="timed out"):
            await CryptoCompareNews(http).fetch(None, NOW)
        server.delay = 0.0
        server.fail("/data/v2/news/", 200, '{"Type":100,"Data":[{"id":"1","title":"Bitc')
        with pytest.raises(BadResponse, match="not JSON"):
            await CryptoCompareNews(http).fetch(None, NOW)
        server.fail("/data/v2/news/", 200, {"Type": 100, "Data": {"items": []}})
        with pytest.raises(BadResponse, match="schema changed"):
            await CryptoCompareNews(http).fetch(None, NOW)
        # One malformed item among good ones is skipped and counted, not fatal.
        bad = {"id": "9", "title": "no time", "url": "https://x.example/9"}
        server.fail("/data/v2/news/", 200, cc_news([cc_item(1, "Bitcoin rallies"), bad]))
        source = CryptoCompareNews(http)
        assert [i.title for i in await source.fetch(None, NOW)] == ["Bitcoin rallies"] and source.skipped == 1
        await http.aclose()


async def test_cryptopanic_errors_and_votes() -> None:
    from tests.engine.sentiment.news_fakes import cp_page

    with JsonService({"/api/developer/v2/posts/": lambda q: (200, {}, cp_page())}) as server:
        http = client(server.url, "cryptopanic", retries=0, secrets=(TOKEN,))
        items = await CryptoPanicNews(http, TOKEN, filter="important").fetch(None, NOW)
        assert server.requests[0].query["filter"] == "important"
        delay = next(i for i in items if "delays" in i.title)
        assert (
            delay.important
            and delay.votes is not None
            and delay.votes.negative == 3
            and delay.coins == ("eth",)
        )
        server.fail("/api/developer/v2/posts/", 200, {"status": "Incomplete", "info": "Token not found"})
        with pytest.raises(ServiceError, match="Token not found"):
            await CryptoPanicNews(http, TOKEN).fetch(None, NOW)
        server.fail("/api/developer/v2/posts/", 403, {"status": "Forbidden"})
        with pytest.raises(Exception) as info:
            await CryptoPanicNews(http, TOKEN).fetch(None, NOW)
        assert TOKEN not in str(info.value)
        await http.aclose()


async def test_rss_source_keeps_going_after_a_refused_feed(sessions) -> None:
    with news_server() as server:
        http = client(server.url, "rss:x", retries=0)
        with pytest.raises(BadResponse, match="entities"):
            await RssNews(http, f"{server.url}/rss/bomb", "bomb").fetch(None, NOW)
        items = await RssNews(http, f"{server.url}/rss/good", "decrypt").fetch(None, NOW)
        assert len(items) == 2 and items[0].lang == "en"
        # A feed URL's own query string reaches the server.
        good = server.routes["/rss/good"]
        server.routes["/rss/q"] = lambda q: (
            good(q) if q == {"format": "rss", "lang": "en"} else (404, {}, "no")
        )
        assert len(await RssNews(http, f"{server.url}/rss/q?format=rss&lang=en", "q").fetch(None, NOW)) == 2
        await http.aclose()


async def test_pages_walk_back_in_time_and_stop_at_what_is_stored(sessions) -> None:
    pages = {
        None: [
            cc_item(10 + i, f"Newest story number {i} about bitcoin", when=T0 + 1000 - i) for i in range(3)
        ],
        str(T0 + 998 - 1): [
            cc_item(20 + i, f"Older story number {i} about ether", when=T0 + 500 - i) for i in range(3)
        ],
        str(T0 + 498 - 1): [],
    }
    with JsonService({"/data/v2/news/": lambda q: (200, {}, cc_news(pages[q.get("lTs")]))}) as server:
        news = pipeline(
            server.url, sessions, SourceConfig(kind="cryptocompare", base_url=server.url, pages=5)
        )
        first = await news.ingest()
        assert [r.query.get("lTs") for r in server.requests] == [None, str(T0 + 997), str(T0 + 497)]
        assert first.added == 6
        # Next time: one page, which holds nothing newer than what is stored.
        second = await news.ingest()
        await news.aclose()
    assert len(server.requests) == 4 and second.added == 0


async def test_cryptopanic_follows_next_links() -> None:
    from tests.engine.sentiment.news_fakes import cp_page, cp_post

    with JsonService({}) as server:
        older = cp_page([cp_post(1, "Older post about Solana", currencies=["SOL"])])
        newer = cp_page([cp_post(9, "Newer post about Solana", currencies=["SOL"])])
        newer["next"] = f"{server.url}/api/developer/v2/posts/?auth_token={TOKEN}&kind=news&page=2"
        server.routes["/api/developer/v2/posts/"] = lambda q: (
            200,
            {},
            older if q.get("page") == "2" else newer,
        )
        http = client(server.url, "cryptopanic", retries=0, secrets=(TOKEN,))
        items = await CryptoPanicNews(http, TOKEN, pages=3).fetch(None, NOW)
        await http.aclose()
    assert [i.title for i in items] == ["Newer post about Solana", "Older post about Solana"]
    assert len(server.requests) == 2
