"""The trading engine: configuration, indicators, strategies, trading, backtest, runtime, web."""
