"""Notifications wired to the runtime: a replayed run sends its trades, reload results and the daily
summary to the bot's webhook (a local HTTP server), signed and within the channel's rate limit."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from engine.observability import SecretRegistry
from engine.store.models import Bot, Trade
from tests.engine.notify.fakes import fake_webhook
from tests.engine.runtime.helpers import database, db_events, make_runtime

BOT_FILE = "eth_btc_trend.yaml"
SECRET = "s3cret-for-the-hook"


def _add_notifications(workspace, url: str, events: str, rate: str = "") -> None:
    path = workspace / "bots" / BOT_FILE
    path.write_text(
        path.read_text()
        + f"""
notifications:
  webhooks:
    - name: ops
      url: {url}
      secret: env:OPS_HOOK_SECRET
      events: [{events}]
      retry: {{attempts: 0}}
{rate}"""
    )


def _runtime(workspace, factory, end: str):
    runtime = make_runtime(workspace, factory, end=end, command_interval=None, alert_interval=0.05)
    runtime.alerts.notifier_options = {
        "resolve_secret": lambda ref: {"env:OPS_HOOK_SECRET": SECRET}[ref],
        "secrets": SecretRegistry(),
    }
    return runtime


async def _play(runtime) -> None:
    async for batch in runtime.feed.batches():
        await runtime.dispatch(batch)
        await runtime.settle()


@pytest.mark.slow
async def test_a_replayed_run_notifies_its_trades_and_a_daily_summary(workspace):
    with fake_webhook(SECRET) as hook:
        _add_notifications(workspace, hook.url, "trade_opened, trade_closed, daily_summary, reload")
        async with database(workspace) as factory:
            runtime = _runtime(workspace, factory, end="2024-01-02 00:30")
            await runtime.start()
            assert list(runtime.alerts.routes) == ["eth-btc-trend"]  # the other bot has no block
            await runtime._stop_bot("xrp-futures-breakout")  # half the work: it has nothing to send
            await _play(runtime)
            await runtime.stop()  # the last poll and a flush of every channel
            opened = await db_events(factory, "trade", "opened")
            async with factory() as session:
                bot_id = (
                    await session.execute(select(Bot.id).where(Bot.name == "eth-btc-trend"))
                ).scalar_one()
                trades = list(
                    (
                        await session.execute(select(Trade).where(Trade.bot_id == bot_id).order_by(Trade.id))
                    ).scalars()
                )
    assert hook.rejected == 0  # every body carried a valid signature
    by_kind: dict[str, list[dict]] = {}
    for body in hook.received:
        by_kind.setdefault(body["event"], []).append(body)
    mine = [e for e in opened if e.bot_id == bot_id]
    assert mine and trades, "the replay trades"
    assert [(b["data"]["pair"], b["data"]["side"], b["data"]["price"]) for b in by_kind["trade_opened"]] == [
        (e.data["pair"], e.data["side"], e.data["price"]) for e in mine
    ]
    assert all(b["bot"] == "eth-btc-trend" for b in by_kind["trade_opened"])
    closed = by_kind["trade_closed"]
    assert [(b["data"]["pair"], b["data"]["exit_price"], b["data"]["pnl"]) for b in closed] == [
        (t.pair, float(t.close_price), float(t.profit_abs)) for t in trades
    ]
    assert closed[0]["data"]["currency"] == "BTC"
    (summary,) = by_kind["daily_summary"]
    assert pd.Timestamp(summary["data"]["since"]) == pd.Timestamp("2024-01-01", tz="UTC")
    (row,) = summary["data"]["bots"]
    day_one = [t for t in trades if pd.Timestamp(t.close_time) < pd.Timestamp("2024-01-02", tz="UTC")]
    assert row["bot"] == "eth-btc-trend" and row["trades"] == len(day_one)


async def test_reload_results_are_notified_and_the_rate_limit_holds(workspace):
    with fake_webhook(SECRET) as hook:
        rate = "      rate_limit: {messages: 2, per_seconds: 3600}\n"
        _add_notifications(workspace, hook.url, "trade_opened, trade_closed, reload, error", rate)
        strategy = workspace / "strategies" / "ema_rsi.yaml"
        async with database(workspace) as factory:
            runtime = _runtime(workspace, factory, end="2024-01-01 01:00")
            await runtime.start()
            original = strategy.read_text()
            strategy.write_text(original.replace("slow_ma", "slow_mx", 1))
            await runtime.reload()  # invalid: nothing changes, the error is notified
            await runtime.alerts.poll()
            (notifier,) = runtime.alerts.notifiers.values()
            assert await notifier.flush()
            first = list(hook.received)
            for typo in ("slow_my", "slow_mz", "slow_m1"):  # three more invalid edits, three more events
                strategy.write_text(original.replace("slow_ma", typo, 1))
                await runtime.reload()
            await runtime.stop()
            stats = notifier.stats()["webhook:ops"]
            invalid = await db_events(factory, "reload", "invalid")
    (message,) = first
    assert message["event"] == "reload" and message["data"]["ok"] is False
    assert "ema_rsi.yaml:" in message["data"]["errors"][0] and "error[DSL003]" in message["data"]["errors"][0]
    assert len(invalid) == 4
    assert len(hook.received) == 2  # two messages per hour, whatever happened
    assert stats.suppressed == 2


async def test_a_block_whose_secret_does_not_resolve_is_reported_and_the_bots_run(workspace):
    with fake_webhook(SECRET) as hook:
        _add_notifications(workspace, hook.url, "trade_opened")
        async with database(workspace) as factory:
            runtime = make_runtime(workspace, factory, end="2024-01-01 01:00", command_interval=None)
            runtime.alerts.notifier_options = {"resolve_secret": lambda ref: "", "secrets": SecretRegistry()}
            await runtime.start()
            assert runtime.alerts.notifiers == {} and len(runtime.slots) == 2
            await runtime.stop()


class _Recorder:
    def __init__(self) -> None:
        self.events: list = []

    def notify(self, event) -> None:
        self.events.append(event)

    async def stop(self) -> None:
        pass


async def test_halts_are_notified_once_per_reason_bot_and_day(tmp_path):
    from datetime import UTC, datetime

    from engine.runtime.alerts import Alerts
    from engine.store import BotMode, EventCategory, record_event, upsert_bot

    async with database(tmp_path) as factory:
        alerts = Alerts(factory)
        await alerts.start()
        mine, theirs = _Recorder(), _Recorder()
        alerts.notifiers, alerts.routes = {"a": mine, "b": theirs}, {"bot-a": "a", "bot-b": "b"}
        async with factory() as session, session.begin():
            a = await upsert_bot(session, name="bot-a", config_hash="x", mode=BotMode.PAPER)
            b = await upsert_bot(session, name="bot-b", config_hash="y", mode=BotMode.PAPER)
            for day, bot, reason in [
                (1, a, "portfolio_daily_loss"),
                (1, b, "portfolio_daily_loss"),  # the same portfolio halt, seen by another bot
                (1, a, "daily_loss_limit"),
                (1, a, "daily_loss_limit"),
                (1, a, "cooldown"),  # routine: not a halt
                (2, a, "daily_loss_limit"),  # a new day, a new halt
            ]:
                await record_event(
                    session,
                    EventCategory.RISK,
                    "blocked",
                    "refused",
                    bot_id=bot.id,
                    data={"pair": "ETH/BTC", "side": "long", "reason": reason},
                    time=datetime(2024, 1, day, 12, tzinfo=UTC),
                )
        await alerts.poll()
        await alerts.stop()
    portfolio = theirs.events
    assert len(portfolio) == 1 and portfolio[0].bot is None  # engine-wide: every notifier
    assert portfolio[0].until == datetime(2024, 1, 2, tzinfo=UTC)
    assert [(e.bot, e.until.day) for e in mine.events] == [(None, 2), ("bot-a", 2), ("bot-a", 3)]


async def test_model_events_that_need_a_person_reach_every_notifier(tmp_path):
    from engine.notify import ModelAlert, render
    from engine.runtime.alerts import Alerts
    from engine.store import EventCategory, record_event

    async with database(tmp_path) as factory:
        alerts = Alerts(factory)
        await alerts.start()
        first, second = _Recorder(), _Recorder()
        alerts.notifiers = {"a": first, "b": second}
        async with factory() as session, session.begin():
            for kind, message in (
                ("ml/drift", "model btc_direction: major feature drift (PSI > 0.25) in rsi"),
                ("ml/retrain", "model btc_direction: candidate trained, not promoted"),  # routine
                ("ml/degraded", "model btc_direction: live balanced accuracy 0.41 < 0.5"),
                (
                    "ml/retrain_failed",
                    "model btc_direction: retraining failed (exit 1); production model kept",
                ),
                ("started", "bot started"),  # other system events stay quiet
            ):
                await record_event(
                    session, EventCategory.SYSTEM, kind, message, data={"model": "btc_direction"}
                )
        await alerts.poll()
        await alerts.stop()
    for recorder in (first, second):
        assert [(type(e), e.what) for e in recorder.events] == [
            (ModelAlert, "drift"),
            (ModelAlert, "degraded"),
            (ModelAlert, "retrain_failed"),
        ]
    drift = render(first.events[0])
    assert drift.title == "Model btc_direction: feature drift" and "rsi" in (drift.body or "")
