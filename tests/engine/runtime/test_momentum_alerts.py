"""Momentum alerts end to end: a strategy's ``alerts:`` fire on a generated pump in a replayed run, are
stored as ``alert`` events, rate limited per bot, pair and alert, and reach the bot's webhook (a local
HTTP server) with the pair, the score and why; the backtest's signals send them at the same candles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.config import load_bot
from engine.data.naming import candle_filename
from engine.indicators.synthetic import pump_and_dump
from engine.observability import SecretRegistry
from engine.strategy import compute_signals
from tests.engine.notify.fakes import fake_webhook
from tests.engine.runtime.helpers import database, db_events, make_runtime

ROOT = Path(__file__).resolve().parents[3]
SECRET = "hook-secret"
PAIR = "ADA/BTC"

BOT = """\
bot: pump-watch
strategy: ../strategies/pump_guard.yaml
exchange: {{name: binance, mode: paper}}
pairs: [{pair}]
capital: {{initial: 1 BTC, max_per_trade: 20%}}
notifications:
  webhooks:
    - name: ops
      url: {url}
      secret: env:OPS_HOOK_SECRET
      events: [momentum_alert]
      retry: {{attempts: 0}}
"""


def _workspace(root: Path, url: str) -> tuple[Path, pd.DataFrame, int]:
    (root / "bots").mkdir(parents=True)
    (root / "data").mkdir()
    shutil.copytree(ROOT / "strategies", root / "strategies")
    (root / "bots" / "pump.yaml").write_text(BOT.format(pair=PAIR, url=url))
    episode = pump_and_dump(520, 380, np.random.default_rng(4), rise=0.08, rise_candles=4, burst=6.0)
    candles = episode.candles.copy()
    candles.index = pd.date_range("2024-01-01", periods=len(candles), freq="5min", tz="UTC", name="date")
    candles.to_parquet(root / "data" / candle_filename(PAIR, "5m"))
    return root / "bots" / "pump.yaml", candles, episode.pump_start


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@pytest.mark.slow
async def test_a_generated_pump_sends_one_alert_with_pair_score_and_why(tmp_path):
    with fake_webhook(SECRET) as hook:
        bot_file, candles, pump_start = _workspace(tmp_path, hook.url)
        async with database(tmp_path) as factory:
            runtime = make_runtime(tmp_path, factory, command_interval=None, alert_interval=0.05)
            runtime.alerts.notifier_options = {
                "resolve_secret": lambda ref: {"env:OPS_HOOK_SECRET": SECRET}[ref],
                "secrets": SecretRegistry(),
            }
            await runtime.start()
            async for batch in runtime.feed.batches():
                await runtime.dispatch(batch)
                await runtime.settle()
            await runtime.stop()
            stored = await db_events(factory, "alert", "momentum")

    # The backtest's view of the same candles: the raw condition and the alerts it sends.
    bot = load_bot(bot_file)
    signals = compute_signals(bot.strategy, candles, features=True)
    raw = bot.strategy.plan.evaluate(candles)["alert_pump"].to_numpy(dtype=bool)
    sent = signals.index[signals["alert:pump"].to_numpy()]
    assert raw[:pump_start].sum() == 0  # calm before the pump
    near = raw[pump_start : pump_start + 12]
    assert near.sum() >= 2, "the pump holds the condition on more than one candle"

    pumps = [e for e in stored if e.data["alert"] == "pump"]
    assert [_utc(e.time) for e in pumps] == list(sent)
    assert len(pumps) == 1  # every firing candle after the first is inside the 12-candle limit
    (event,) = pumps
    assert pump_start <= candles.index.get_loc(_utc(event.time)) < pump_start + 3

    assert hook.rejected == 0
    bodies = [b for b in hook.received if b["event"] == "momentum_alert" and b["data"]["alert"] == "pump"]
    assert len(bodies) == 1
    (body,) = bodies
    assert body["bot"] == "pump-watch"
    assert body["data"]["pair"] == PAIR
    assert body["data"]["score"] == pytest.approx(event.data["score"]) and body["data"]["score"] > 4
    assert body["data"]["why"] == "price and volume surging together against the pair's last day"
    assert PAIR in body["title"] and "Why: price and volume surging" in body["text"]
    # Every alert the channel received was stored first, and only those.
    assert sorted(b["data"]["alert"] for b in hook.received) == sorted(e.data["alert"] for e in stored)


async def test_a_restarted_bot_keeps_the_rate_limit_of_its_stored_alerts(tmp_path):
    from types import SimpleNamespace

    from engine.runtime.momentum import AlertFired, AlertLimiter, alert_data
    from engine.store import BotMode, EventCategory, record_event, upsert_bot
    from engine.trading import Candle, Signals

    step = 5 * 60 * 10**9
    t0 = int(pd.Timestamp("2024-01-02", tz="UTC").value)
    strategy = SimpleNamespace(
        model=SimpleNamespace(alerts={"pump": SimpleNamespace(every=12, message="why")})
    )

    def decided(k: int) -> dict:
        candle = Candle(t0 + k * step, 1.0, 1.0, 1.0, 1.0)
        return {PAIR: (candle, Signals(alerts=(("pump", 5.0),)))}

    async with database(tmp_path) as factory:
        async with factory() as session, session.begin():
            bot = await upsert_bot(session, name="pump-watch", config_hash="x", mode=BotMode.PAPER)
            sent = AlertFired(PAIR, "pump", 5.0, "why", 1.0, t0)
            await record_event(
                session,
                EventCategory.ALERT,
                "momentum",
                "pump",
                bot_id=bot.id,
                data=alert_data(sent, "paper", 12),
                time=pd.Timestamp(t0, tz="UTC").to_pydatetime(),
            )
        async with factory() as session:
            limiter = await AlertLimiter.restored(session, bot.id, step)
    assert limiter.take(strategy, t0 + 11 * step, step, decided(11)) == []  # inside the 12 candles
    (again,) = limiter.take(strategy, t0 + 12 * step, step, decided(12))
    assert again.pair == PAIR and again.time_ns == t0 + 12 * step
    assert AlertLimiter().take(strategy, t0 + 11 * step, step, decided(11))  # without the stored one
