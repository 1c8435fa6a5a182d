"""Shared set-up: a fake Binance with one spot market and one trading account, and a CcxtExchange on it."""

from __future__ import annotations

from typing import Any

from engine.exchanges.ccxt_exchange import CcxtExchange
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance
from tests.fakes.binance_trading import FakeTrading

API_KEY = "k3yPUBLICabcdef0123456789"
SECRET = "s3cretHMACkeyZYXWVU987654321"


def start_server(balances: dict[str, str] | None = None) -> tuple[FakeBinance, FakeTrading]:
    candles = walk_candles("2024-01-01", "2024-01-03", start_price=2000.0)
    market = FakeMarket.spot("ETH/USDT", candles, tick_size="0.01", step_size="0.0001", min_notional="5")
    server = FakeBinance([market]).start()  # wall clock: ccxt signs with it
    trading = FakeTrading.install(server, API_KEY, SECRET, balances or {"USDT": "10000", "ETH": "2"})
    return server, trading


def exchange_for(server: FakeBinance, **kwargs: Any) -> CcxtExchange:
    config = server.ccxt_config()
    options = {"options": config["options"], "rateLimit": 1, "timeout": kwargs.pop("timeout", 3000)}
    kwargs.setdefault("lookup_delay", 0.05)
    return CcxtExchange(
        "binance",
        kwargs.pop("mode", "testnet"),
        api_key=kwargs.pop("api_key", API_KEY),
        secret=kwargs.pop("secret", SECRET),
        api_urls=kwargs.pop("api_urls", server.ccxt_urls()),
        options=options,
        **kwargs,
    )
