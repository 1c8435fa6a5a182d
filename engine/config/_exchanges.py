"""Exchange ids the configuration accepts: those of ccxt 4.5.90.

A constant rather than ``import ccxt`` because importing ccxt takes seconds and ``engine validate``
must start fast; tests/engine/config/test_schema.py fails when the installed ccxt disagrees.
"""

from __future__ import annotations

__all__ = ["EXCHANGES"]

EXCHANGES: tuple[str, ...] = (
    "alpaca", "apex", "aster", "backpack", "bequant", "bigone", "binance", "binancecoinm", "binanceus",
    "binanceusdm", "bingx", "bit2c", "bitbank", "bitbns", "bitfinex", "bitflyer", "bitget", "bithumb",
    "bitopro", "bitrue", "bitso", "bitstamp", "bitteam", "bittrade", "bitvavo", "blockchaincom",
    "blofin", "btcbox", "btcmarkets", "btcturk", "btse", "bullish", "bybit", "bybiteu", "bybitid",
    "bydfi", "cex", "coinbase", "coinbaseexchange", "coinbaseinternational", "coincheck", "coinmate",
    "coinone", "coinsph", "coinspot", "cryptocom", "cryptomus", "deepcoin", "delta", "deribit",
    "derive", "digifinex", "dydx", "extended", "fmfwio", "foxbit", "gate", "gateeu", "gemini", "grvt",
    "hashkey", "hibachi", "hitbtc", "hollaex", "htx", "hyperliquid", "independentreserve", "indodax",
    "kraken", "krakenfutures", "kucoin", "kucoinfutures", "latoken", "lbank", "lighter", "luno",
    "mercado", "mexc", "modetrade", "mudrex", "myokx", "nado", "ndax", "okx", "okxus", "onetrading",
    "p2b", "pacifica", "paradex", "paymium", "phemex", "poloniex", "polymarket", "revolutx",
    "tokocrypto", "toobit", "upbit", "weex", "whitebit", "woo", "woofipro", "xt", "zaif", "zebpay",
)  # fmt: skip
