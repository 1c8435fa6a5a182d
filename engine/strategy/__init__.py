"""A compiled strategy applied to candles: the signals frame the trading kernel consumes."""

from engine.strategy.signals import SIGNAL_COLUMNS, compute_signals

__all__ = ["SIGNAL_COLUMNS", "compute_signals"]
