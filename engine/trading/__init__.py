"""The trading core: positions, fills, stops and the risk manager as ONE compiled step function,
shared by the backtest (whole arrays) and the live runtime (one closed candle at a time).

    from engine.trading import Trader, TradingParams
    trader = Trader(["BTC/USDT"], TradingParams(stop_loss=0.02), timeframe="5m")
    events = trader.on_candle("BTC/USDT", candle, signals)

The numba kernel is imported lazily, so ``import engine.trading`` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.trading.params import (
    ExchangeLimits,
    LowProfitPairs,
    MaxDrawdown,
    ProfitLock,
    Protections,
    StoplossGuard,
    TradingParams,
    Trailing,
)

if TYPE_CHECKING:
    from engine.trading.state import TradingState
    from engine.trading.trader import Blocked, Candle, Fill, Order, Signals, Trader

__all__ = [
    "Blocked",
    "Candle",
    "ExchangeLimits",
    "Fill",
    "LowProfitPairs",
    "MaxDrawdown",
    "Order",
    "ProfitLock",
    "Protections",
    "Signals",
    "StoplossGuard",
    "Trader",
    "TradingParams",
    "TradingState",
    "Trailing",
]

_LAZY = {
    "Blocked": "engine.trading.trader",
    "Candle": "engine.trading.trader",
    "Fill": "engine.trading.trader",
    "Order": "engine.trading.trader",
    "Signals": "engine.trading.trader",
    "Trader": "engine.trading.trader",
    "TradingState": "engine.trading.state",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.trading' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
