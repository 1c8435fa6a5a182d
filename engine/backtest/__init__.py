"""Backtesting: many pairs, one capital pool, the live trading kernel over whole arrays.

    from engine.backtest import PairInput, run_backtest
    result = run_backtest({"ETH/BTC": PairInput.from_frames(candles, signals)}, TradingParams())
    result.trades, result.equity, result.metrics, result.blocked

Heavy modules (numba, the kernel) load on first use, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.backtest.export import EXPORT_COLUMNS, export_trades_csv
    from engine.backtest.inputs import BacktestInputError, DetailCandles, PairInput
    from engine.backtest.metrics import compute_metrics, per_pair_table
    from engine.backtest.runner import BacktestResult, run_backtest

__all__ = [
    "EXPORT_COLUMNS",
    "BacktestInputError",
    "BacktestResult",
    "DetailCandles",
    "PairInput",
    "compute_metrics",
    "export_trades_csv",
    "per_pair_table",
    "run_backtest",
]

_LAZY = {
    "EXPORT_COLUMNS": "engine.backtest.export",
    "export_trades_csv": "engine.backtest.export",
    "BacktestInputError": "engine.backtest.inputs",
    "DetailCandles": "engine.backtest.inputs",
    "PairInput": "engine.backtest.inputs",
    "compute_metrics": "engine.backtest.metrics",
    "per_pair_table": "engine.backtest.metrics",
    "BacktestResult": "engine.backtest.runner",
    "run_backtest": "engine.backtest.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.backtest' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
