"""Notifications from the runtime: the bots' ``notifications:`` blocks fed from the event log.

The runtime writes everything worth telling into the database anyway (trades, risk blocks, reloads,
errors), in the same transactions as the facts themselves. :class:`Alerts` reads those rows by id every
``interval`` seconds and turns them into :mod:`engine.notify` events, so a notification is only ever
sent for something committed, and the bots never wait for a chat server.

- Bots with the same ``notifications:`` block share one :class:`~engine.notify.Notifier` (one rate
  limit per channel, not one per bot). A bot's own events go to its notifier; engine-wide events
  (a portfolio halt, an invalid file no bot owns, engine errors) go to every notifier.
- ``trade``/``opened`` events become ``trade_opened``; stored trades become ``trade_closed`` (with
  entry, exit and P&L); a ``risk``/``blocked`` entry whose reason halts trading becomes one
  ``risk_halt`` per reason, bot and UTC day; ``reload`` events (applied, started, restarted,
  removed, invalid with ``file:line:col``) become ``reload``; ``error`` events become ``error``;
  ``alert``/``momentum`` events (a strategy's ``alerts:``, rate limited by the bot) become
  ``momentum_alert`` with the pair, the score and why; the model events that need a person
  (``ml/drift``, ``ml/degraded``, ``ml/retrain_failed``, recorded by ``engine ml drift``/``retrain``
  and by the retraining inside ``engine run``) become ``model``, sent to every notifier.
- The daily summary is sent when the candles cross 00:00 UTC (market time, so a replay sends one per
  replayed day): trades closed that day per bot, wins, P&L, open positions and equity.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.notify import (
    BotDaySummary,
    DailySummary,
    ErrorEvent,
    ModelAlert,
    MomentumAlert,
    NotificationsConfig,
    ReloadResult,
    RiskHalt,
    TradeClosed,
    TradeOpened,
)
from engine.notify import Event as NotifyEvent

__all__ = ["HALT_REASONS", "Alerts"]

log = logging.getLogger("engine.alerts")

# Entry refusals that mean "trading is halted", worth a message; the others (cooldown, exposure, ...)
# are routine and stay in the event log.
HALT_REASONS = {
    "portfolio_daily_loss": "portfolio daily loss limit reached: new entries halted until the next UTC day",
    "portfolio_profit_lock": "portfolio profit lock: equity fell back below the kept gain, new entries stop",
    "daily_loss_limit": "daily loss limit reached: new entries halted until the next UTC day",
    "max_drawdown": "max drawdown protection: new entries paused",
}
_UNTIL_NEXT_DAY = {"portfolio_daily_loss", "daily_loss_limit"}
_RELOAD_KINDS = {"applied", "started", "restarted", "removed", "invalid"}
MODEL_KINDS = ("ml/drift", "ml/degraded", "ml/retrain_failed")
_REASON = re.compile(r"\(([^()]*)\)\s*$")


def _utc(time: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(time)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _quote(pair: str) -> str:
    return pair.split(":")[-1] if ":" in pair else pair.split("/")[-1]


class Alerts:
    """Turns the runtime's committed events into notifications for the bots' channels."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        interval: float = 1.0,
        notifier_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.factory = factory
        self.interval = interval
        # Passed to every Notifier (resolve_secret, http_client, clock, mode): tests and embedding.
        self.notifier_options = dict(notifier_options or {})
        self.notifiers: dict[str, Any] = {}  # configuration (as JSON) -> Notifier
        self.routes: dict[str, str] = {}  # bot name -> its notifier's key
        self.sent = 0
        self._names: dict[int, str] = {}
        self._event_cursor = 0
        self._trade_cursor = 0
        self._halts: set[tuple[str, str | None, pd.Timestamp | None]] = set()
        self._day: pd.Timestamp | None = None
        self._summaries: list[tuple[pd.Timestamp, pd.Timestamp]] = []
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._polling = asyncio.Lock()  # one poll at a time: two would send the same rows twice

    # --- lifecycle --------------------------------------------------------------------------------

    async def configure(self, configs: Mapping[str, NotificationsConfig | None]) -> list[str]:
        """Use these bots' notification blocks (bot name -> block); returns the problems (a secret
        that does not resolve, say) of the blocks that could not be used."""
        from engine.notify import Notifier, NotifyConfigError

        problems: list[str] = []
        routes: dict[str, str] = {}
        for bot, config in sorted(configs.items()):
            if config is None:
                continue
            key = config.model_dump_json()
            if key not in self.notifiers:
                try:
                    notifier = Notifier(config, **self.notifier_options)
                except NotifyConfigError as error:
                    problems.append(f"{bot}: {error}")
                    continue
                if self._running:
                    await notifier.start()
                self.notifiers[key] = notifier
            routes[bot] = key
        for key in set(self.notifiers) - set(routes.values()):
            await self.notifiers.pop(key).stop()
        self.routes = routes
        return problems

    async def start(self) -> None:
        """Start after the events already stored (history is not re-sent), then poll in the background."""
        from engine.store.models import Event, Trade

        async with self.factory() as session:
            self._event_cursor = (await session.execute(select(func.max(Event.id)))).scalar() or 0
            self._trade_cursor = (await session.execute(select(func.max(Trade.id)))).scalar() or 0
        self._running = True
        for notifier in self.notifiers.values():
            await notifier.start()
        self._task = asyncio.create_task(self._run(), name="engine:alerts")

    async def stop(self) -> None:
        """Send what was committed up to now, then stop every notifier (each flushes its queue)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._running:
            try:
                await self.poll()
            except Exception:
                log.exception("last notification poll failed")
        for notifier in self.notifiers.values():
            await notifier.stop()
        self._running = False

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                # Shielded: stop() cancels this task, but a poll half done must finish (its rows are
                # already behind the cursor), and stop()'s own poll waits for it.
                await asyncio.shield(self.poll())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification poll failed")

    def observe_time(self, close_time: pd.Timestamp | int) -> None:
        """A candle closed at ``close_time``: a new UTC day queues the summary of the one before."""
        stamp = (
            pd.Timestamp(close_time, tz="UTC")
            if isinstance(close_time, int)
            else pd.Timestamp(close_time).tz_convert("UTC")
        )
        day = stamp.normalize()
        if self._day is not None and day > self._day:
            self._summaries.append((self._day, day))
        if self._day is None or day > self._day:
            self._day = day

    # --- reading the log --------------------------------------------------------------------------

    async def poll(self) -> int:
        """Notify everything committed since the last poll; returns the number of notifications."""
        async with self._polling:
            return await self._poll()

    async def _poll(self) -> int:
        from engine.store.models import Event, Trade

        async with self.factory() as session:
            if not self.notifiers:
                # Nobody listens: only move past what was written (no rows read, nothing queued up).
                self._event_cursor = (await session.execute(select(func.max(Event.id)))).scalar() or 0
                self._trade_cursor = (await session.execute(select(func.max(Trade.id)))).scalar() or 0
                self._summaries = []
                return 0
            events = list(
                (
                    await session.execute(
                        select(Event)
                        .where(
                            Event.id > self._event_cursor,
                            or_(
                                Event.category.in_(("trade", "risk", "reload", "error", "alert")),
                                and_(Event.category == "system", Event.kind.in_(MODEL_KINDS)),
                            ),
                        )
                        .order_by(Event.id)
                    )
                ).scalars()
            )
            trades = list(
                (
                    await session.execute(
                        select(Trade).where(Trade.id > self._trade_cursor).order_by(Trade.id)
                    )
                ).scalars()
            )
            if events:
                self._event_cursor = events[-1].id
            if trades:
                self._trade_cursor = trades[-1].id
            summaries, self._summaries = self._summaries, []
            await self._learn_names(session, {e.bot_id for e in events} | {t.bot_id for t in trades})
            count = 0
            for event in events:
                for notice in self._from_event(event):
                    count += self._send(notice)
            for trade in trades:
                count += self._send(self._closed(trade))
            for since, until in summaries:
                count += await self._summaries_for(session, since, until)
        self.sent += count
        return count

    async def _learn_names(self, session: AsyncSession, ids: set[int | None]) -> None:
        from engine.store.models import Bot

        missing = {i for i in ids if i is not None and i not in self._names}
        if missing:
            rows = await session.execute(select(Bot.id, Bot.name).where(Bot.id.in_(missing)))
            self._names.update({row.id: row.name for row in rows})

    def _send(self, event: NotifyEvent) -> int:
        bot = getattr(event, "bot", None)
        if bot is not None:
            key = self.routes.get(bot)
            targets = [self.notifiers[key]] if key is not None else []
        else:
            targets = list(self.notifiers.values())
        for notifier in targets:
            notifier.notify(event)
        return len(targets)

    def _from_event(self, event: Any) -> list[NotifyEvent]:
        bot = self._names.get(event.bot_id) if event.bot_id is not None else None
        data = event.data or {}
        category, kind = str(event.category), event.kind
        if category == "trade" and kind == "opened":
            match = _REASON.search(event.message)
            return [
                TradeOpened(
                    bot=bot or "?",
                    pair=str(data.get("pair", "")),
                    side=str(data.get("side", "")),
                    price=float(data.get("price", 0.0)),
                    amount=float(data.get("amount", 0.0)),
                    reason=match.group(1) if match else None,
                )
            ]
        if category == "risk" and kind == "blocked":
            reason = str(data.get("reason", ""))
            if reason not in HALT_REASONS:
                return []
            whole = reason.startswith("portfolio_")
            day = _utc(event.time).normalize()
            key = (reason, None if whole else bot, day)
            if key in self._halts:
                return []
            self._halts.add(key)
            until = (day + pd.Timedelta(days=1)).to_pydatetime() if reason in _UNTIL_NEXT_DAY else None
            return [RiskHalt(reason=HALT_REASONS[reason], bot=None if whole else bot, until=until)]
        if category == "reload" and kind in _RELOAD_KINDS:
            if kind == "invalid":
                return [ReloadResult(ok=False, errors=(event.message,))]
            name = (bot or "?",)
            field = {"applied": "changed", "restarted": "changed", "started": "added", "removed": "removed"}[
                kind
            ]
            return [ReloadResult(ok=True, **{field: name})]
        if category == "error":
            return [ErrorEvent(message=event.message, bot=bot, where=kind)]
        if category == "alert" and kind == "momentum":
            score = data.get("score")
            return [
                MomentumAlert(
                    bot=bot or "?",
                    pair=str(data.get("pair", "")),
                    alert=str(data.get("alert", "")),
                    why=str(data.get("why", "")),
                    score=None if score is None else float(score),
                    price=float(data["price"]) if data.get("price") is not None else None,
                    time=_utc(event.time).to_pydatetime(),
                )
            ]
        if category == "system" and kind in MODEL_KINDS:
            return [ModelAlert(model=str(data.get("model", "?")), what=kind[3:], message=event.message)]
        return []

    def _closed(self, trade: Any) -> TradeClosed:
        opened, closed = _utc(trade.open_time), _utc(trade.close_time)
        return TradeClosed(
            bot=self._names.get(trade.bot_id, "?"),
            pair=trade.pair,
            side=str(trade.side.value),
            entry_price=float(trade.open_price),
            exit_price=float(trade.close_price),
            amount=float(trade.amount),
            pnl=float(trade.profit_abs),
            pnl_ratio=float(trade.profit_ratio),
            reason=trade.exit_reason,
            duration=(closed - opened).to_pytimedelta(),
            currency=_quote(trade.pair),
        )

    async def _summaries_for(self, session: AsyncSession, since: pd.Timestamp, until: pd.Timestamp) -> int:
        """One daily summary per notifier, of the bots routed to it."""
        from engine.store import equity_before, list_open_positions
        from engine.store.models import Bot, Trade

        count = 0
        start, end = since.to_pydatetime(), until.to_pydatetime()
        by_key: dict[str, list[str]] = {}
        for bot, key in self.routes.items():
            by_key.setdefault(key, []).append(bot)
        for key, bots in by_key.items():
            rows: list[BotDaySummary] = []
            currency = "USDT"
            for name in sorted(bots):
                bot_id = (await session.execute(select(Bot.id).where(Bot.name == name))).scalar()
                if bot_id is None:
                    continue
                closed = list(
                    (
                        await session.execute(
                            select(Trade).where(
                                Trade.bot_id == bot_id, Trade.close_time >= start, Trade.close_time < end
                            )
                        )
                    ).scalars()
                )
                equity = await equity_before(session, bot_id, end)
                if closed:
                    currency = _quote(closed[0].pair)
                rows.append(
                    BotDaySummary(
                        bot=name,
                        trades=len(closed),
                        wins=sum(1 for t in closed if float(t.profit_abs) > 0),
                        pnl=sum(float(t.profit_abs) for t in closed),
                        open_positions=len(await list_open_positions(session, bot_id)),
                        equity=equity,
                    )
                )
            summary = DailySummary(since=start, until=end, bots=tuple(rows), currency=currency)
            self.notifiers[key].notify(summary)
            count += 1
        return count
