"""Coin tagging rules, deduplication keys, keyword events and which items go to the model."""

from __future__ import annotations

import pytest

from engine.sentiment.coins import tag_coins
from engine.sentiment.config import ModelConfig
from engine.sentiment.dedup import canonical_url, same_story, title_key, title_words
from engine.sentiment.evaluation import load_labelled
from engine.sentiment.events import detect_events
from engine.sentiment.items import plain_text
from engine.sentiment.scorer import CryptoScorer
from engine.sentiment.triage import model_reason


@pytest.mark.parametrize(
    ("title", "kwargs", "coins"),
    [
        ("Bitcoin Cash jumps 10%", {}, ("bch",)),  # the longer name wins: not BTC
        ("BTC and eth rally together", {}, ("btc", "eth")),
        ("Link your wallet to the app", {}, ()),  # LINK as an English word
        ("LINK rallies 20% after SWIFT pilot", {}, ("link",)),
        ("$ONE pumps on exchange listing", {}, ("one",)),
        ("ONE MORE TIME: MARKETS FALL", {}, ()),  # all-caps headline: ambiguous tickers ignored
        ("The one thing traders missed", {}, ()),
        ("El sol brilla sobre Madrid", {"lang": "es"}, ()),  # "sol" in Spanish
        ("SOL price jumps", {"lang": "es"}, ("sol",)),  # a context word makes it the coin
        ("Precio de SOL hoy", {"lang": "es"}, ()),  # upper case alone is not enough outside English
        ("Near Protocol hosts conference", {}, ("near",)),
        ("Prices near record highs", {}, ()),
        ("Shiba Inu burn rate explodes", {}, ("shib",)),
        ("Market wrap", {"given": ("BTC", "crv")}, ("btc", "crv")),  # the source's tickers are kept
    ],
)
def test_coin_tagging_rules(title: str, kwargs: dict, coins: tuple[str, ...]) -> None:
    assert tag_coins(title, **kwargs) == coins


def test_canonical_urls() -> None:
    a = canonical_url("http://WWW.CoinDesk.com/markets/btc-70k/?utm_source=x&utm_medium=rss#top")
    assert (
        a == canonical_url("https://coindesk.com/markets/btc-70k") == "https://coindesk.com/markets/btc-70k"
    )
    assert canonical_url("https://x.com/a?id=2&b=1") == canonical_url("https://x.com/a?b=1&id=2&fbclid=z")
    assert canonical_url("https://x.com/a?id=2") != canonical_url("https://x.com/a?id=3")


def test_near_identical_titles() -> None:
    a = title_words("Bitcoin surges past $70K as ETF inflows hit record")
    assert same_story(a, title_words("Bitcoin Surges Past $70K As ETF Inflows Hit A Record - CoinDesk"))
    assert not same_story(a, title_words("Bitcoin falls below $70K as ETF outflows hit record"))
    assert not same_story(title_words("BTC up"), title_words("BTC down"))
    assert title_key("The SEC approves: Bitcoin ETF!") == "sec approves bitcoin etf"


def test_plain_text_strips_markup_and_scripts() -> None:
    text = plain_text('<p>Hi <script>alert("x")</script><img src=x onerror=alert(1)>&amp; bye</p>', 100)
    assert text == "Hi & bye"
    assert plain_text("&lt;script&gt;", 100) == "<script>"  # decoded text; pages escape it when shown
    assert plain_text(None, 10) == "" and len(plain_text("x" * 50, 10)) == 10


@pytest.mark.parametrize(
    ("title", "events"),
    [
        ("Binance to list Jupiter (JUP)", ("listing",)),
        ("Binance delists several privacy tokens", ("delisting",)),
        ("Bybit hacked for $1.5 billion", ("hack",)),
        ("Bitcoin halving is two weeks away", ("halving",)),
        ("SEC approves spot Bitcoin ETFs", ("regulation",)),
        ("Solana network halted for hours after outage", ("outage",)),
        ("Fed cuts rates by 50 basis points", ("macro",)),
        ("Polygon announces partnership with Starbucks", ("partnership",)),
        ("Ethereum developers set date for next hard fork", ("fork",)),
        ("Bitcoin surges past $70K", ()),
        ("A list of the top 10 coins", ()),
    ],
)
def test_keyword_events(title: str, events: tuple[str, ...]) -> None:
    assert detect_events(title) == events


def test_only_ambiguous_or_critical_items_go_to_the_model() -> None:
    scorer = CryptoScorer()
    config = ModelConfig(enabled=True)

    def reason(title: str, summary: str = "", **kw) -> str | None:
        local = scorer.score(title, summary=summary).score
        return model_reason(
            scorer,
            title,
            summary,
            local,
            detect_events(title, summary),
            kw.get("source", "x"),
            kw.get("important", False),
            config,
        )

    assert reason("Exchange confirms hack, says user funds are safe") == "critical event (hack)"
    assert reason("Bybit hacked, $1.5 billion drained") is None  # decisive already
    assert reason("Bitcoin trades sideways", important=True) == "flagged important by readers"
    assert reason("Bitcoin rallies as miners dump coins") == "ambiguous (crypto terms cancel out)"
    assert (
        reason(
            "Bitcoin soars to a record high",
            "Insiders say the exchange is insolvent and withdrawals are frozen.",
        )
        == "title and summary disagree"
    )
    assert reason("Bitcoin surges past $70K") is None
    assert reason("Crypto market opens week flat") is None
    # On the labelled headlines (a realistic mix, no summaries), a small share is sent.
    rows = load_labelled()
    sent = sum(reason(text) is not None for _, text in rows)
    assert sent / len(rows) < 0.25


def test_cryptocompare_categories_that_are_tickers() -> None:
    from engine.sentiment.coins import source_tickers

    assert source_tickers("BTC|Market|CRV|ICO|Regulation|ETF|JUP") == ("btc", "crv", "jup")
