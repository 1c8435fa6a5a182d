"""The portfolio risk manager: limits that span every bot of one engine.

Each bot's own risk (sizing, stops, its daily loss limit, protections) stays in the trading kernel.
This layer only refuses *new entries*, before the kernel sees the signal, when the whole portfolio
is past a limit:

- ``max_exposure``: open positions of all bots together, at entry prices, as a ratio of the capital
  allocated to all bots (the sum of each bot's ``capital.initial``);
- ``max_open_trades``: open positions plus entries already decided, over all bots;
- ``daily_loss_limit``: when the summed equity of all bots has fallen by this ratio since the first
  candle of the UTC day, new entries halt everywhere until the next UTC day;
- ``profit_lock_at`` / ``profit_lock_keep``: the portfolio profit lock. Gain is the summed equity of
  all bots over their summed allocated capital, minus 1. The lock arms the first time the gain reaches
  ``profit_lock_at`` and stays armed (an engine restart with the same two values restores it). While
  armed, a new entry is refused whenever the gain is below ``profit_lock_keep``; exits and open
  positions are untouched, so if open positions carry the gain back to ``keep`` entries resume.

It is plain synchronous code: bots run on one event loop and call it between two awaits, so a check
and the update that follows it cannot interleave with another bot's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["BotExposure", "PortfolioLimits", "PortfolioRisk"]


@dataclass(frozen=True, slots=True)
class PortfolioLimits:
    max_exposure: float | None = None
    max_open_trades: int | None = None
    daily_loss_limit: float | None = None
    profit_lock_at: float | None = None
    profit_lock_keep: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_exposure", "daily_loss_limit", "profit_lock_at"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 10:
                raise ValueError(f"portfolio {name} must be a positive ratio, got {value}")
        if self.max_open_trades is not None and self.max_open_trades < 1:
            raise ValueError(f"portfolio max_open_trades must be at least 1, got {self.max_open_trades}")
        at, keep = self.profit_lock_at, self.profit_lock_keep
        if (at is None) != (keep is None):
            raise ValueError(
                "the portfolio profit lock needs both profit_lock_at and profit_lock_keep "
                "(--profit-lock-at and --profit-lock-keep)"
            )
        if at is not None and keep is not None and not 0 <= keep < at:
            raise ValueError(
                f"portfolio profit_lock_keep must be at least 0 and below profit_lock_at ({at}), got {keep}"
            )

    @property
    def active(self) -> bool:
        return any(
            v is not None
            for v in (self.max_exposure, self.max_open_trades, self.daily_loss_limit, self.profit_lock_at)
        )


@dataclass(slots=True)
class BotExposure:
    """What one bot reports after each candle."""

    capital: float
    equity: float
    open_trades: int = 0
    notional: float = 0.0


@dataclass
class PortfolioRisk:
    limits: PortfolioLimits
    bots: dict[str, BotExposure] = field(default_factory=dict)
    day: pd.Timestamp | None = None
    day_start_equity: float = 0.0
    halted_day: pd.Timestamp | None = None
    pending: dict[str, int] = field(default_factory=dict)  # entries decided, not yet filled, per bot
    lock_armed: bool = False
    # Sums over the bots (equity, capital, open trades, notional), kept until a bot reports again: the
    # bots entering on one close check the limits one after the other with no report in between, and
    # summing 100 bots five times per check cost ~1 ms of every round that decided entries.
    _sums: tuple[float, float, int, float] | None = field(default=None, init=False, repr=False)

    # --- bookkeeping ----------------------------------------------------------------------------

    def register(self, bot: str, capital: float, equity: float | None = None) -> None:
        self.bots[bot] = BotExposure(capital=capital, equity=capital if equity is None else equity)
        self._sums = None

    def remove(self, bot: str) -> None:
        self.bots.pop(bot, None)
        self.pending.pop(bot, None)
        self._sums = None

    def update(self, bot: str, *, equity: float, open_trades: int, notional: float, pending: int) -> None:
        entry = self.bots.get(bot)
        if entry is None:
            return
        entry.equity, entry.open_trades, entry.notional = equity, open_trades, notional
        self.pending[bot] = pending
        self._sums = None
        self._arm_lock()

    def _arm_lock(self) -> None:
        at = self.limits.profit_lock_at
        if at is not None and not self.lock_armed and self.total_capital > 0 and self.gain() >= at:
            self.lock_armed = True

    def observe_time(self, time: pd.Timestamp | int) -> None:
        """A candle closed at ``time`` (an int is ns): roll the UTC day (and lift a daily halt) when it changed."""
        stamp = (
            pd.Timestamp(time, tz="UTC") if isinstance(time, int) else pd.Timestamp(time).tz_convert("UTC")
        )
        day = stamp.normalize()
        if self.day is None or day > self.day:
            self.day = day
            self.day_start_equity = self.total_equity
            if self.halted_day is not None and self.halted_day < day:
                self.halted_day = None

    # --- views ----------------------------------------------------------------------------------

    def _totals(self) -> tuple[float, float, int, float]:
        if self._sums is None:
            bots = self.bots.values()
            self._sums = (
                sum(b.equity for b in bots),
                sum(b.capital for b in bots),
                sum(b.open_trades for b in bots),
                sum(b.notional for b in bots),
            )
        return self._sums

    @property
    def total_equity(self) -> float:
        return self._totals()[0]

    @property
    def total_capital(self) -> float:
        return self._totals()[1]

    @property
    def open_trades(self) -> int:
        return self._totals()[2] + sum(self.pending.values())

    @property
    def halted(self) -> bool:
        return self.halted_day is not None

    def gain(self) -> float:
        """Summed equity over summed allocated capital, minus 1 (0 without bots)."""
        capital = self.total_capital
        return 0.0 if capital <= 0 else self.total_equity / capital - 1.0

    def daily_loss(self) -> float:
        if self.day_start_equity <= 0:
            return 0.0
        return (self.day_start_equity - self.total_equity) / self.day_start_equity

    # --- the decision ---------------------------------------------------------------------------

    def entry_refusal(self) -> str | None:
        """Why a new entry may not be decided now (None: allowed). Call it once per entry signal and
        count an allowed one with :meth:`note_entry` so that the next check sees it."""
        limits = self.limits
        if limits.daily_loss_limit is not None:
            if self.halted_day is None and self.daily_loss() >= limits.daily_loss_limit:
                self.halted_day = self.day
            if self.halted_day is not None:
                return "portfolio_daily_loss"
        if limits.profit_lock_keep is not None:
            self._arm_lock()
            if self.lock_armed and self.gain() < limits.profit_lock_keep:
                return "portfolio_profit_lock"
        if limits.max_open_trades is not None and self.open_trades >= limits.max_open_trades:
            return "portfolio_max_open_trades"
        if limits.max_exposure is not None:
            _, capital, _, notional = self._totals()
            if capital > 0 and notional / capital >= limits.max_exposure:
                return "portfolio_max_exposure"
        return None

    def note_entry(self, bot: str) -> None:
        self.pending[bot] = self.pending.get(bot, 0) + 1
