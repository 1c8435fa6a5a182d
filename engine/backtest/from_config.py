"""A bot's YAML configuration -> the trading kernel's parameters (one mapping for every mode).

Precedence, documented in docs/backtesting.md: the strategy's own stops come first (its author
designed the exits); the bot's `risk` stop-loss, take-profit and trailing apply when the strategy
declares none.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.config import LoadedBot
from engine.trading import params as tp

__all__ = ["trading_params"]


def _trailing(value) -> tp.Trailing | None:
    if value is None:
        return None
    return tp.Trailing(distance=float(value.distance), activate_at=float(value.activate_at))


def trading_params(bot: LoadedBot, limits: Mapping[str, tp.ExchangeLimits] | None = None) -> tp.TradingParams:
    model = bot.model
    stops = bot.strategy.model.stops
    risk = model.risk
    prot = model.protections

    def ratio_stop(strategy_value, bot_value) -> float | None:
        # An expression stop (str) is a per-candle price distance handled by the signals frame;
        # the bot's ratio then serves only as the fallback where the expression is undefined.
        if isinstance(strategy_value, float):
            return strategy_value
        return None if bot_value is None else float(bot_value)

    protections = tp.Protections(
        cooldown_bars=int(prot.cooldown_bars),
        stoploss_guard=None
        if prot.stoploss_guard is None
        else tp.StoplossGuard(
            trade_limit=prot.stoploss_guard.trade_limit,
            lookback=prot.stoploss_guard.lookback,
            stop_duration=prot.stoploss_guard.stop_duration,
            only_per_pair=prot.stoploss_guard.only_per_pair,
        ),
        max_drawdown=None
        if prot.max_drawdown is None
        else tp.MaxDrawdown(
            max_ratio=float(prot.max_drawdown.max_ratio),
            lookback=prot.max_drawdown.lookback,
            stop_duration=prot.max_drawdown.stop_duration,
        ),
        low_profit_pairs=None
        if prot.low_profit_pairs is None
        else tp.LowProfitPairs(
            min_profit=float(prot.low_profit_pairs.min_profit),
            lookback=prot.low_profit_pairs.lookback,
            stop_duration=prot.low_profit_pairs.stop_duration,
            trade_limit=prot.low_profit_pairs.trade_limit,
        ),
        max_consecutive_losing_days=prot.max_consecutive_losing_days,
        max_position_size=None if prot.max_position_size is None else float(prot.max_position_size),
    )
    return tp.TradingParams(
        fee_maker=float(model.fees.maker),
        fee_taker=float(model.fees.taker),
        slippage=float(model.slippage),
        initial_capital=float(model.capital.initial),
        max_per_trade=float(model.capital.max_per_trade),
        risk_per_trade=None if risk.risk_per_trade is None else float(risk.risk_per_trade),
        max_exposure=float(risk.max_exposure),
        max_open_trades=risk.max_open_trades,
        reinvest=float(model.capital.reinvest),
        stop_loss=ratio_stop(stops.stop_loss, risk.stop_loss),
        take_profit=ratio_stop(stops.take_profit, risk.take_profit),
        trailing=_trailing(stops.trailing) or _trailing(risk.trailing),
        daily_loss_limit=None if risk.daily_loss_limit is None else float(risk.daily_loss_limit),
        daily_limit_closes_positions=bool(risk.daily_limit_closes_positions),
        profit_lock=None
        if risk.profit_lock is None
        else tp.ProfitLock(
            activate_at=float(risk.profit_lock.activate_at), keep=float(risk.profit_lock.keep)
        ),
        protections=protections,
        market=model.exchange.market,
        limits=dict(limits or {}),
    )
