"""Coin tagging by ticker and name, with rules for tickers that are also ordinary words.

Rules (docs/sentiment.md, "Coin tagging"):
1. Names are matched case-insensitively as whole words ("Bitcoin", "Shiba Inu"); longer names first, so
   "Bitcoin Cash" tags BCH and not BTC.
2. Unambiguous tickers ("BTC", "ETH", "XRP") are matched case-insensitively as whole words or cashtags.
3. Ambiguous tickers (ONE, LINK, NEAR, SOL, DOT, UNI, ATOM, TON, GAS, OP, ...: English or Spanish/Portuguese
   words) count only as a cashtag (``$LINK``), or in upper case in a headline that is not all upper case
   and written in English, or followed by a context word (price, token, coin, network, holders, ...)
   in any language. "SOL" in "el sol brilla" is never a coin; "SOL price jumps" is.
4. Coins the source attached are kept, also beyond the table: CryptoPanic's currency codes, and
   CryptoCompare categories written as tickers (2-6 capitals, not a topic such as ICO, ETF or NFT).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["AMBIGUOUS", "COINS", "TOPICS", "source_tickers", "tag_coins"]

# ticker (lower case) -> names. Extend here; tickers are the keys used in rules (sentiment.btc.score).
COINS: dict[str, tuple[str, ...]] = {
    "btc": ("bitcoin",),
    "eth": ("ethereum", "ether"),
    "sol": ("solana",),
    "xrp": ("ripple", "xrp ledger"),
    "ada": ("cardano",),
    "doge": ("dogecoin",),
    "bnb": ("binance coin", "bnb chain"),
    "dot": ("polkadot",),
    "link": ("chainlink",),
    "avax": ("avalanche",),
    "ltc": ("litecoin",),
    "bch": ("bitcoin cash",),
    "trx": ("tron",),
    "pol": ("polygon", "matic"),
    "atom": ("cosmos hub",),
    "near": ("near protocol",),
    "uni": ("uniswap",),
    "shib": ("shiba inu",),
    "ton": ("toncoin",),
    "one": ("harmony one",),
    "xlm": ("stellar lumens",),
    "xmr": ("monero",),
    "etc": ("ethereum classic",),
    "arb": ("arbitrum",),
    "op": ("optimism",),
    "apt": ("aptos",),
    "sui": (),
    "pepe": (),
    "usdt": ("tether",),
    "usdc": (),
    "hbar": ("hedera",),
    "fil": ("filecoin",),
    "zec": ("zcash",),
    "dash": (),
}
# Tickers that are words (English, Spanish, Portuguese) or too short to trust alone.
AMBIGUOUS = frozenset(
    {
        "one",
        "link",
        "near",
        "sol",
        "dot",
        "uni",
        "atom",
        "ton",
        "op",
        "etc",
        "sui",
        "dash",
        "apt",
        "fil",
        "arb",
        "pol",
    }
)
_CONTEXT = frozenset(
    [
        "coin",
        "coins",
        "token",
        "tokens",
        "price",
        "prices",
        "network",
        "crypto",
        "holders",
        "staking",
        "stake",
        "etf",
        "chain",
        "mainnet",
        "blockchain",
        "rally",
        "rallies",
        "surges",
        "jumps",
        "falls",
        "drops",
        "plunges",
        "trading",
        "traders",
        "whales",
        "usd",
        "usdt",
    ]
)
_NAMES = sorted(
    ((name, ticker) for ticker, names in COINS.items() for name in names), key=lambda x: -len(x[0])
)
_NAME_RE = re.compile(r"(?<![\w$])(" + "|".join(re.escape(n) for n, _ in _NAMES) + r")(?![\w])", re.I)
_NAME_TO_TICKER = {name: ticker for name, ticker in _NAMES}
_TOKEN = re.compile(r"\$?[A-Za-z][A-Za-z0-9]*")
_GIVEN = re.compile(r"^[a-z0-9]{2,10}$")
# CryptoCompare categories in capitals that are topics, not coins.
TOPICS = frozenset(
    {"ICO", "ETF", "NFT", "DEFI", "DAO", "SEC", "USA", "US", "UK", "EU", "ASIA", "AI", "CBDC", "OTC"}
)


def source_tickers(categories: str) -> tuple[str, ...]:
    """Tickers among CryptoCompare's ``categories`` (``BTC|Market|CRV|ICO`` -> btc, crv)."""
    out = []
    for raw in categories.split("|"):
        word = raw.strip()
        if 2 <= len(word) <= 6 and word.isupper() and word.isalnum() and word not in TOPICS:
            out.append(word.lower())
    return tuple(out)


def _context_after(words: list[str], i: int) -> bool:
    return i + 1 < len(words) and words[i + 1].lower() in _CONTEXT


def tag_coins(
    title: str, summary: str = "", *, lang: str | None = None, given: Iterable[str] = ()
) -> tuple[str, ...]:
    """Tickers (lower case, sorted) the item concerns, by the rules in the module docstring."""
    found: set[str] = {c.lower() for c in given if _GIVEN.match(c.lower())}
    english = lang is None or lang.lower().startswith("en")
    for text in (title, summary[:2000]):
        if not text:
            continue
        rest = _NAME_RE.sub(lambda m: found.add(_NAME_TO_TICKER[m.group(1).lower()]) or " ", text)
        shouting = rest.upper() == rest
        words = _TOKEN.findall(rest)
        for i, raw in enumerate(words):
            cashtag = raw.startswith("$")
            word = raw.lstrip("$")
            ticker = word.lower()
            if ticker not in COINS:
                continue
            if (
                ticker not in AMBIGUOUS
                or cashtag
                or _context_after(words, i)
                or (english and word.isupper() and not shouting)
            ):
                found.add(ticker)
    return tuple(sorted(found))
