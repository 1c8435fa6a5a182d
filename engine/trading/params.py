"""The trading and risk parameters of one bot, and their packing into the kernel's parameter vectors.

Ratios are plain fractions (``0.02`` is 2 %); durations are seconds or a duration literal (``"4h"``).
``None`` switches a rule off. The YAML configuration is translated into this class; nothing here
knows about YAML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from engine.trading import layout as L

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ExchangeLimits",
    "LowProfitPairs",
    "MaxDrawdown",
    "ProfitLock",
    "Protections",
    "StoplossGuard",
    "TradingParams",
    "Trailing",
]

_NS = 1_000_000_000


def _seconds(value: float | str | timedelta, what: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, str):
        # Imported here: ``dsl`` pulls in lark and pandas, and this module must stay cheap to import.
        from dsl.timeframes import parse_duration

        try:
            return float(parse_duration(value))
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    if not value > 0:
        raise ValueError(f"{what} must be a positive duration, got {value!r}")
    return float(value)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _ratio(value: float | None, what: str, *, low: float = 0.0, high: float = 1.0) -> None:
    if value is not None:
        _check(
            isinstance(value, int | float) and low < value <= high,
            f"{what} must be a ratio in ({low:g}, {high:g}], got {value!r}",
        )


@dataclass(frozen=True, slots=True)
class Trailing:
    """Once the price has moved ``activate_at`` in the position's favour, the stop follows the best
    price at ``distance`` below it (above it for shorts). ``activate_at=0`` trails from the entry."""

    distance: float
    activate_at: float = 0.0

    def __post_init__(self) -> None:
        _ratio(self.distance, "trailing.distance", high=0.999)
        _check(self.activate_at >= 0, f"trailing.activate_at must be >= 0, got {self.activate_at!r}")


@dataclass(frozen=True, slots=True)
class ProfitLock:
    """Once the price has moved ``activate_at`` in the position's favour, the stop moves to lock in
    ``keep`` (entry * (1 + keep) for a long)."""

    activate_at: float
    keep: float

    def __post_init__(self) -> None:
        _ratio(self.activate_at, "profit_lock.activate_at", high=100.0)
        _check(
            0 <= self.keep < self.activate_at,
            f"profit_lock.keep must be >= 0 and below activate_at ({self.activate_at!r}), got {self.keep!r}",
        )


@dataclass(frozen=True, slots=True)
class StoplossGuard:
    """Pause entries for ``stop_duration`` after ``trade_limit`` losing stop-outs within ``lookback``:
    on the pair that stopped out (``only_per_pair``) or on every pair."""

    trade_limit: int
    lookback: float | str | timedelta
    stop_duration: float | str | timedelta
    only_per_pair: bool = False

    def __post_init__(self) -> None:
        _check(self.trade_limit >= 1, f"stoploss_guard.trade_limit must be >= 1, got {self.trade_limit!r}")
        object.__setattr__(self, "lookback", _seconds(self.lookback, "stoploss_guard.lookback"))
        object.__setattr__(
            self, "stop_duration", _seconds(self.stop_duration, "stoploss_guard.stop_duration")
        )


@dataclass(frozen=True, slots=True)
class MaxDrawdown:
    """Pause every pair for ``stop_duration`` when a closing trade leaves equity ``max_ratio`` below
    its peak around the trades closed within ``lookback`` (each seen before and after it closed)."""

    max_ratio: float
    lookback: float | str | timedelta
    stop_duration: float | str | timedelta

    def __post_init__(self) -> None:
        _ratio(self.max_ratio, "max_drawdown.max_ratio")
        object.__setattr__(self, "lookback", _seconds(self.lookback, "max_drawdown.lookback"))
        object.__setattr__(self, "stop_duration", _seconds(self.stop_duration, "max_drawdown.stop_duration"))


@dataclass(frozen=True, slots=True)
class LowProfitPairs:
    """Pause a pair for ``stop_duration`` when the summed profit ratio of its trades closed within
    ``lookback`` (at least ``trade_limit`` of them) is below ``min_profit``."""

    min_profit: float
    lookback: float | str | timedelta
    stop_duration: float | str | timedelta
    trade_limit: int = 1

    def __post_init__(self) -> None:
        _check(self.trade_limit >= 1, f"low_profit_pairs.trade_limit must be >= 1, got {self.trade_limit!r}")
        object.__setattr__(self, "lookback", _seconds(self.lookback, "low_profit_pairs.lookback"))
        object.__setattr__(
            self, "stop_duration", _seconds(self.stop_duration, "low_profit_pairs.stop_duration")
        )


@dataclass(frozen=True, slots=True)
class Protections:
    cooldown_bars: int = 0
    stoploss_guard: StoplossGuard | None = None
    max_drawdown: MaxDrawdown | None = None
    low_profit_pairs: LowProfitPairs | None = None
    max_consecutive_losing_days: int | None = None
    max_position_size: float | None = None  # quote currency, per position

    def __post_init__(self) -> None:
        _check(self.cooldown_bars >= 0, f"cooldown_bars must be >= 0, got {self.cooldown_bars!r}")
        _check(
            self.max_consecutive_losing_days is None or self.max_consecutive_losing_days >= 1,
            f"max_consecutive_losing_days must be >= 1, got {self.max_consecutive_losing_days!r}",
        )
        _check(
            self.max_position_size is None or self.max_position_size > 0,
            f"max_position_size must be > 0, got {self.max_position_size!r}",
        )


@dataclass(frozen=True, slots=True)
class ExchangeLimits:
    """What the exchange accepts for one pair; 0 means no limit."""

    min_notional: float = 0.0  # smallest order value in quote currency
    amount_step: float = 0.0  # lot size: amounts are rounded down to a multiple of it
    price_tick: float = 0.0  # stop and target prices are rounded to a multiple of it

    def __post_init__(self) -> None:
        for name in ("min_notional", "amount_step", "price_tick"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"exchange limit {name} must be >= 0, got {value!r}")

    @classmethod
    def from_ccxt_market(cls, market: Mapping[str, Any], *, tick_size: bool = True) -> ExchangeLimits:
        """Read a ccxt market structure. ``tick_size`` says whether the exchange's ``precision``
        values are step sizes (ccxt ``TICK_SIZE`` mode, e.g. Binance) or numbers of decimals."""

        def step(value: Any) -> float:
            if value is None:
                return 0.0
            return float(value) if tick_size else 10.0 ** -float(value)

        limits = market.get("limits") or {}
        cost = (limits.get("cost") or {}).get("min")
        precision = market.get("precision") or {}
        return cls(
            min_notional=float(cost) if cost else 0.0,
            amount_step=step(precision.get("amount")),
            price_tick=step(precision.get("price")),
        )


@dataclass(frozen=True, slots=True)
class TradingParams:
    fee_maker: float = 0.001
    fee_taker: float = 0.001
    slippage: float = 0.0  # fraction of the price lost on every market fill
    initial_capital: float = 10_000.0
    max_per_trade: float = 1.0  # cap on one position's notional, ratio of capital
    risk_per_trade: float | None = None  # ratio of capital lost if the stop is hit
    max_exposure: float = 1.0  # cap on all open positions' value, ratio of equity
    max_open_trades: int | None = None
    reinvest: float = 1.0  # share of realised profit added to the capital positions are sized from
    stop_loss: float | None = None  # ratio below (above for shorts) the entry price
    take_profit: float | None = None
    stop_loss_atr: float | None = None  # ATR multiple used when the strategy gives no stop distance
    take_profit_atr: float | None = None
    trailing: Trailing | None = None
    daily_loss_limit: float | None = None  # ratio of the equity at the start of the UTC day
    daily_limit_closes_positions: bool = False
    profit_lock: ProfitLock | None = None
    protections: Protections = field(default_factory=Protections)
    market: Literal["spot", "futures"] = "spot"
    limits: Mapping[str, ExchangeLimits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(0 <= self.fee_maker < 0.1, f"fee_maker must be in [0, 0.1), got {self.fee_maker!r}")
        _check(0 <= self.fee_taker < 0.1, f"fee_taker must be in [0, 0.1), got {self.fee_taker!r}")
        _check(0 <= self.slippage < 0.5, f"slippage must be in [0, 0.5), got {self.slippage!r}")
        _check(
            math.isfinite(self.initial_capital) and self.initial_capital > 0,
            f"initial_capital must be > 0, got {self.initial_capital!r}",
        )
        _ratio(self.max_per_trade, "max_per_trade")
        _ratio(self.risk_per_trade, "risk_per_trade")
        _ratio(self.max_exposure, "max_exposure")
        _check(0 <= self.reinvest <= 1, f"reinvest must be in [0, 1], got {self.reinvest!r}")
        _ratio(self.stop_loss, "stop_loss", high=0.999)
        _ratio(self.take_profit, "take_profit", high=100.0)
        _ratio(self.stop_loss_atr, "stop_loss_atr", high=1000.0)
        _ratio(self.take_profit_atr, "take_profit_atr", high=1000.0)
        _ratio(self.daily_loss_limit, "daily_loss_limit")
        _check(
            self.max_open_trades is None or self.max_open_trades >= 1,
            f"max_open_trades must be >= 1, got {self.max_open_trades!r}",
        )
        _check(self.market in ("spot", "futures"), f"market must be 'spot' or 'futures', got {self.market!r}")

    def pack(self) -> tuple[np.ndarray, np.ndarray]:
        """The (int64, float64) parameter vectors the kernel reads; see ``layout`` for the columns."""
        import numpy as np

        pi = np.zeros(L.N_PARAM_I, dtype=np.int64)
        pf = np.full(L.N_PARAM_F, np.nan, dtype=np.float64)
        nan = math.nan

        def opt(value: float | None) -> float:
            return nan if value is None else float(value)

        pi[L.I_FUTURES] = int(self.market == "futures")
        pi[L.I_MAX_OPEN] = -1 if self.max_open_trades is None else self.max_open_trades
        prot = self.protections
        pi[L.I_COOLDOWN] = prot.cooldown_bars
        if (g := prot.stoploss_guard) is not None:
            pi[L.I_SLG_LIMIT] = g.trade_limit
            pi[L.I_SLG_LOOKBACK] = round(float(g.lookback) * _NS)
            pi[L.I_SLG_STOP] = round(float(g.stop_duration) * _NS)
            pi[L.I_SLG_PER_PAIR] = int(g.only_per_pair)
        if (m := prot.max_drawdown) is not None:
            pf[L.F_MDD_MAX] = m.max_ratio
            pi[L.I_MDD_LOOKBACK] = round(float(m.lookback) * _NS)
            pi[L.I_MDD_STOP] = round(float(m.stop_duration) * _NS)
        if (lp := prot.low_profit_pairs) is not None:
            pf[L.F_LPP_MIN] = lp.min_profit
            pi[L.I_LPP_LOOKBACK] = round(float(lp.lookback) * _NS)
            pi[L.I_LPP_STOP] = round(float(lp.stop_duration) * _NS)
            pi[L.I_LPP_TRADES] = lp.trade_limit
        pi[L.I_LOSING_DAYS] = prot.max_consecutive_losing_days or 0
        pi[L.I_DAILY_CLOSE] = int(self.daily_limit_closes_positions)

        pf[L.F_FEE_MAKER] = self.fee_maker
        pf[L.F_FEE_TAKER] = self.fee_taker
        pf[L.F_SLIPPAGE] = self.slippage
        pf[L.F_INITIAL] = self.initial_capital
        pf[L.F_MAX_PER_TRADE] = self.max_per_trade
        pf[L.F_RISK] = opt(self.risk_per_trade)
        pf[L.F_MAX_EXPOSURE] = self.max_exposure
        pf[L.F_REINVEST] = self.reinvest
        pf[L.F_SL_PCT] = opt(self.stop_loss)
        pf[L.F_TP_PCT] = opt(self.take_profit)
        pf[L.F_SL_ATR] = opt(self.stop_loss_atr)
        pf[L.F_TP_ATR] = opt(self.take_profit_atr)
        if self.trailing is not None:
            pf[L.F_TRAIL_ACT] = self.trailing.activate_at
            pf[L.F_TRAIL_DIST] = self.trailing.distance
        pf[L.F_DAILY_LIMIT] = opt(self.daily_loss_limit)
        if self.profit_lock is not None:
            pf[L.F_LOCK_ACT] = self.profit_lock.activate_at
            pf[L.F_LOCK_KEEP] = self.profit_lock.keep
        pf[L.F_MAX_POSITION] = opt(prot.max_position_size)
        return pi, pf

    def pack_limits(self, pairs: Sequence[str]) -> np.ndarray:
        """Exchange limits per pair, in ``pairs`` order (zeros for pairs without known limits)."""
        import numpy as np

        out = np.zeros((len(pairs), L.N_LIMIT), dtype=np.float64)
        for k, pair in enumerate(pairs):
            lim = self.limits.get(pair)
            if lim is not None:
                out[k] = (lim.min_notional, lim.amount_step, lim.price_tick)
        return out
