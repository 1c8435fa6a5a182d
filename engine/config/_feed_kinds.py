"""The kinds of feed source a ``feeds.yaml`` may name: what each produces and which keys it takes.

This is the catalog the validator and the rule language read (members, parameters, whether a key is
needed); the clients that fetch each kind live in ``engine/feeds/sources``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMON_KEYS", "FEED_KINDS", "FeedKind"]

# Keys every feed may set, whatever its source.
COMMON_KEYS = frozenset({"source", "refresh", "max_age", "lag", "description", "history_days"})


@dataclass(frozen=True, slots=True)
class FeedKind:
    name: str
    doc: str
    # None: the members are the keys of the feed's own `values:` / `columns:` mapping.
    members: tuple[str, ...] | None
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    # "required": no data without a key; "optional": a key raises the limits or unlocks members.
    key: str | None = None
    # Pair-scoped kinds give each traded pair its own series (order book, trades).
    per_pair: bool = False
    # False: no public history; recorded live from the moment something follows it.
    history: bool = True
    refresh: str = "1h"
    max_age: str = "2d"
    lag: str = ""  # none
    # Members only some services of a fallback chain provide, with the kinds that do.
    only: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def params(self) -> frozenset[str]:
        return self.required | self.optional


FEED_KINDS: dict[str, FeedKind] = {
    k.name: k
    for k in (
        FeedKind(
            "fear_greed",
            "alternative.me Crypto Fear & Greed Index, 0 (extreme fear) to 100 (extreme greed), daily since 2018-02-01.",
            ("value",),
            refresh="1h",
            max_age="36h",
            lag="10m",
        ),
        FeedKind(
            "coingecko",
            "CoinGecko v3: price, market cap, 24h volume and change of a coin (`coin:` id), and its share of "
            "the whole market's capitalisation (dominance, %).",
            ("price", "market_cap", "volume_24h", "change_24h", "dominance"),
            required=frozenset({"coin"}),
            optional=frozenset({"vs"}),
            key="optional",
            refresh="5m",
            max_age="2h",
        ),
        FeedKind(
            "cryptocompare",
            "CryptoCompare: hourly/daily price and volume of a coin (`symbol:`), and social statistics per "
            "day with a key.",
            ("price", "volume_24h", "followers", "posts"),
            required=frozenset({"symbol"}),
            optional=frozenset({"vs", "coin_id"}),
            key="optional",
            refresh="1h",
            max_age="3h",
        ),
        FeedKind(
            "yahoo",
            "Yahoo Finance's chart API, daily bars of any symbol (`^GSPC`, `DX-Y.NYB`, `GC=F`); a bar is "
            "known at the session close, not its open.",
            ("close", "open", "high", "low", "volume"),
            required=frozenset({"symbol"}),
            refresh="1h",
            max_age="4d",
            # Many exchanges' quotes reach Yahoo 15 minutes late; the official close settles after it.
            lag="15m",
        ),
        FeedKind(
            "exchange",
            "Candles of one pair on an exchange through ccxt, as a price series usable as a fallback.",
            ("price", "volume_24h"),
            required=frozenset({"pair"}),
            optional=frozenset({"exchange"}),
            refresh="5m",
            max_age="2h",
        ),
        FeedKind(
            "calendar",
            "Scheduled events (FOMC, CPI, halvings...) from a YAML or iCalendar file or URL: hours to the "
            "next event and since the last one.",
            ("hours_to_next", "hours_since_last", "importance_next"),
            required=frozenset({"path"}),
            optional=frozenset({"events"}),
            refresh="1d",
            max_age="3650d",
        ),
        FeedKind(
            "orderbook",
            "Order-book snapshots of each traded pair through ccxt: bid/ask imbalance over the top levels, "
            "spread, depth within a band of the mid price. Recorded live only.",
            ("imbalance", "spread_pct", "bid_depth", "ask_depth", "mid"),
            optional=frozenset({"exchange", "depth", "band", "pair"}),
            per_pair=True,
            history=False,
            refresh="1m",
            max_age="10m",
        ),
        FeedKind(
            "positioning",
            "Binance USD-M futures positioning of each traded pair (its linear perpetual) through ccxt: top "
            "traders' long/short position and account ratios, all accounts' long/short ratio, taker buy/sell "
            "volume ratio, and open interest (contracts and value), per `bucket` (5m by default). The "
            "exchange keeps about 30 days: record it going forward.",
            (
                "top_position_ratio",
                "top_account_ratio",
                "global_account_ratio",
                "taker_buy_sell_ratio",
                "open_interest",
                "open_interest_value",
            ),
            optional=frozenset({"exchange", "pair", "bucket"}),
            per_pair=True,
            refresh="5m",
            max_age="1h",
            lag="1m",
        ),
        FeedKind(
            "funding",
            "Binance USD-M futures funding rate of each traded pair (its linear perpetual) through ccxt, "
            "every 8 hours (0.0001 = 0.01 % paid by longs to shorts).",
            ("rate",),
            optional=frozenset({"exchange", "pair"}),
            per_pair=True,
            refresh="1h",
            max_age="9h",
            lag="1m",
        ),
        FeedKind(
            "trades",
            "Public trades of each traded pair through ccxt, per candle: taker buy and sell volume, their "
            "ratio, trade count and large trades. Recorded live only.",
            ("taker_buy_volume", "taker_sell_volume", "taker_buy_ratio", "trade_count", "large_trades"),
            optional=frozenset({"exchange", "large_trade", "pair", "bucket"}),
            per_pair=True,
            history=False,
            refresh="1m",
            max_age="10m",
        ),
        FeedKind(
            "etherscan",
            "Large token transfers to and from labelled exchange wallets (Etherscan API V2; `chain: 56` for "
            "BNB Chain), per hour: exchange inflow, outflow, net flow and count of large transfers.",
            ("inflow", "outflow", "netflow", "large_transfers"),
            required=frozenset({"token"}),
            optional=frozenset({"chain", "min_value", "labels"}),
            key="required",
            refresh="10m",
            max_age="3h",
        ),
        FeedKind(
            "whale_alert",
            "Whale Alert large transactions of an asset (`symbol:`), per hour: flows into and out of "
            "exchange wallets, net flow, count.",
            ("inflow", "outflow", "netflow", "large_transfers"),
            required=frozenset({"symbol"}),
            optional=frozenset({"min_value"}),
            key="required",
            refresh="10m",
            max_age="3h",
        ),
        FeedKind(
            "http_json",
            "Any HTTP JSON API, declared without Python: a URL, where the items list, the time and each "
            "value sit in the answer, an auth header or query key, a schedule and a lag.",
            None,
            required=frozenset({"url", "time", "values"}),
            optional=frozenset({"items", "query", "headers", "key_param", "key_header", "time_unit", "key"}),
            key="optional",
        ),
        FeedKind(
            "file",
            "A user's own series from a CSV or Parquet file: a `time` column, an optional `available_at` "
            "column, and value columns (imported with `engine feeds import`).",
            None,
            required=frozenset({"path", "columns"}),
        ),
    )
}
