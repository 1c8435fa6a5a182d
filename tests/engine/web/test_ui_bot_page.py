"""The bot pages (``/bots``, ``/bots/{id}``) with NiceGUI's simulated user."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from nicegui import app as web_app
from nicegui import ui
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy import select, update

from engine.data import CandleStore, synth_candles
from engine.store.enums import BotMode, BotStatus, EventCategory, PositionSide
from engine.store.models import Bot, BotCommand, EquitySnapshot, Event, Trade
from engine.web.app import include_api
from engine.web.pages import register_pages

from .conftest import Web
from .ui_helpers import require_sqlite, run_timers, sign_in

REPO = Path(__file__).resolve().parents[3]
EVIL = "<img src=x onerror=alert(1)>"
START = pd.Timestamp("2026-01-05 00:00", tz="UTC")

BOT_YAML = """\
bot: chart-bot
strategy: ../strategies/ema_rsi.yaml
exchange: {name: binance, mode: paper}
pairs: [ETH/BTC, LTC/BTC]
capital: {initial: 1 BTC}
"""


@pytest.fixture
def bot_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bot on the repo's ema_rsi strategy, 600 synthetic 5m ETH/BTC candles in the store (none for LTC)."""
    home = tmp_path / "home"
    monkeypatch.setenv("ENGINE_HOME", str(home))
    candles = synth_candles("ETH/BTC", "5m", START, periods=600, seed=7, start_price=0.05)
    CandleStore(home / "data").save("binance", "ETH/BTC", "5m", candles, source="synth", synthetic=True)
    root = tmp_path / "config"
    (root / "strategies").mkdir(parents=True)
    shutil.copy(REPO / "strategies" / "ema_rsi.yaml", root / "strategies" / "ema_rsi.yaml")
    (root / "bots").mkdir()
    path = root / "bots" / "chart_bot.yaml"
    path.write_text(BOT_YAML, encoding="utf-8")
    return path


def candle_at(index: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=5 * index)


async def seed(web: Web, bot_file: Path) -> int:
    async with web.ctx.sessions() as db, db.begin():
        bot = Bot(
            name=EVIL, config_path=str(bot_file), config_hash="", mode=BotMode.PAPER, status=BotStatus.RUNNING
        )
        db.add(bot)
        await db.flush()
        # Opened inside the 450th candle, closed at the open of the 500th.
        opened = candle_at(450) + pd.Timedelta(minutes=2)
        db.add(
            Trade(
                bot_id=bot.id,
                pair="ETH/BTC",
                side=PositionSide.LONG,
                open_time=opened.to_pydatetime(),
                close_time=candle_at(500).to_pydatetime(),
                open_price=Decimal("0.051"),
                close_price=Decimal("0.052"),
                amount=Decimal(2),
                profit_ratio=0.0196,
                profit_abs=Decimal("0.002"),
                fees=Decimal("0.0001"),
                exit_reason="take_profit",
            )
        )
        for i, equity in enumerate((1.0, 1.001, 1.002)):
            when = candle_at(597 + i).to_pydatetime()  # the bot's last candle is the store's last
            db.add(EquitySnapshot(bot_id=bot.id, time=when, equity=equity, cash=equity))
        db.add(
            Event(
                time=candle_at(300).to_pydatetime(),
                bot_id=bot.id,
                category=EventCategory.RELOAD,
                kind="applied",
                message="new configuration in effect",
            )
        )
        db.add(Bot(name="other", config_hash="", mode=BotMode.LIVE))
    return bot.id


def chart_options(user) -> dict:
    (chart,) = user.find(marker="bot-chart").elements
    return chart.options


async def test_bot_page_chart_indicators_markers_and_text(web: Web, bot_file: Path) -> None:
    require_sqlite(web)
    bot_id = await seed(web, bot_file)
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open(f"/bot/{bot_id}")
        await user.should_see(f"Bot {EVIL}", retries=50)
        await user.should_see("Configuration", retries=50)  # the whole page is built
        await user.should_not_see(ui.image)
        options = chart_options(user)
        series = {s["name"]: s for s in options["series"]}
        assert series["ETH/BTC"]["type"] == "candlestick"
        assert len(series["ETH/BTC"]["data"]) == 500
        labels = options["xAxis"][0]["data"]
        assert labels[0] == f"{candle_at(100):%Y-%m-%d %H:%M}"  # the latest 500 of 600 candles
        # The strategy's features: EMAs over the candles, the RSI in the lower panel.
        assert series["fast_ma"]["xAxisIndex"] == 0 and series["slow_ma"]["xAxisIndex"] == 0
        assert series["momentum"]["xAxisIndex"] == 1
        rsi = [v for v in series["momentum"]["data"] if v is not None]
        assert rsi and all(0 <= v <= 100 for v in rsi)
        assert any(name.startswith("atr(") for name in series)  # from the stop-loss expression
        # The trade's entry sits on the candle it opened in, its exit on the close candle.
        assert series["entries"]["data"] == [
            {
                "name": series["entries"]["data"][0]["name"],
                "value": [f"{candle_at(450):%Y-%m-%d %H:%M}", 0.051],
            }
        ]
        assert [e["value"] for e in series["exits"]["data"]] == [[f"{candle_at(500):%Y-%m-%d %H:%M}", 0.052]]
        # Trades, performance, reloads, configuration.
        tables = list(user.find(ui.table).elements)
        trades = next(t for t in tables if any(c["name"] == "reason" for c in t.columns))
        assert [(r["pair"], r["reason"]) for r in trades.rows] == [("ETH/BTC", "take_profit")]
        await user.should_see("Win rate", retries=50)
        await user.should_see("+0.20 %", retries=50)  # 1.0 -> 1.002
        await user.should_see("0.00010000 BTC", retries=50)  # fees, with the unit
        # Realised profit per day and cumulative, in the bot's currency.
        (profit,) = user.find(marker="profit-chart").elements
        assert profit.options["title"]["text"] == "Realised profit (BTC)"
        assert [b["value"] for b in profit.options["series"][0]["data"]] == [0.002]
        (reloads,) = user.find(marker="reloads").elements
        assert [r["message"] for r in reloads.rows] == ["new configuration in effect"]
        (alerts,) = user.find(marker="alerts").elements
        assert alerts.rows == []  # an applied reload is no alert
        (code,) = user.find(ui.code).elements
        assert "strategy: ../strategies/ema_rsi.yaml" in code.content
        # A viewer has no start/stop.
        await user.should_not_see(kind=ui.button, content="Start")

        # The other pair has no stored candles: a clear note, no chart.
        user.find(ui.select).elements.pop().set_value("LTC/BTC")
        await user.should_see("No 5m candles of LTC/BTC (binance) in the candle store", retries=50)
        await user.should_see("engine data download -e binance --pairs LTC/BTC --timeframe 5m", retries=5)
        await user.should_not_see(marker="bot-chart")


async def test_bots_list_links_and_trader_start(web: Web, bot_file: Path) -> None:
    require_sqlite(web)
    bot_id = await seed(web, bot_file)
    await web.add_user("tom", "trader")
    async with user_simulation(root=None) as user:
        # As `engine serve` builds it: the API first, then the pages, on one app.
        web_app.state.web = web.ctx
        include_api(web_app)
        register_pages(web.ctx)
        assert (await user.http_client.get(f"/bots/{bot_id}")).status_code == 401  # the API's route
        assert "html" in (await user.http_client.get(f"/bot/{bot_id}")).headers["content-type"]
        await sign_in(user, web, "tom")
        await user.open("/bots")
        (bots,) = user.find(marker="bots").elements
        links = {row["name"]: row["link"] for row in bots.rows}
        assert links == {EVIL: f"/bot/{bot_id}", "other": f"/bot/{bot_id + 1}"}
        assert [row["profit"] for row in bots.rows] == ["+0.00200000 BTC", "0.000000"]
        await user.open(f"/bot/{bot_id}")
        await user.should_see(f"Bot {EVIL}", retries=50)
        await user.should_see("Configuration", retries=100)  # the whole page is there
        assert not user.find(kind=ui.button, content="Start").elements.pop().enabled  # it runs
        user.find(kind=ui.button, content="Stop").click()
        await user.should_see("Pending: stop", retries=20)
        async with web.ctx.sessions() as db:
            rows = (await db.scalars(select(BotCommand))).all()
        assert [(r.bot_id, r.command, r.status) for r in rows] == [(bot_id, "stop", "pending")]

        # The runtime handles it and a trade closes: the open page follows at the next tick.
        async with web.ctx.sessions() as db, db.begin():
            await db.execute(update(BotCommand).values(status="done"))
            await db.execute(update(Bot).where(Bot.id == bot_id).values(status=BotStatus.PAUSED))
            db.add(
                Trade(
                    bot_id=bot_id,
                    pair="LTC/BTC",
                    side=PositionSide.LONG,
                    open_time=candle_at(590).to_pydatetime(),
                    close_time=candle_at(595).to_pydatetime(),
                    open_price=Decimal("0.002"),
                    close_price=Decimal("0.0019"),
                    amount=Decimal(1),
                    profit_ratio=-0.05,
                    profit_abs=Decimal("-0.0001"),
                    fees=Decimal(0),
                    exit_reason="stop_loss",
                )
            )
        await run_timers(user)
        await user.should_see("stopped by a user (Start resumes it) · paper", retries=20)
        await user.should_not_see("Pending: stop")
        assert user.find(kind=ui.button, content="Start").elements.pop().enabled
        (trades,) = (t for t in user.find(ui.table).elements if any(c["name"] == "reason" for c in t.columns))
        assert [r["reason"] for r in trades.rows] == ["stop_loss", "take_profit"]


async def test_bot_by_name_missing_bot_and_missing_file(web: Web, tmp_path: Path) -> None:
    require_sqlite(web)
    async with web.ctx.sessions() as db, db.begin():
        db.add(
            Bot(name="nofile", config_path=str(tmp_path / "gone.yaml"), config_hash="", mode=BotMode.PAPER)
        )
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/bot/nofile")
        await user.should_see("Bot nofile", retries=50)
        await user.should_see("configuration file is not available", retries=50)
        await user.should_not_see(ui.echart)
        await user.open("/bot/12345")
        await user.should_see("No bot with id or name '12345'.", retries=50)


async def test_broken_config_shows_its_errors_as_text(web: Web, bot_file: Path) -> None:
    require_sqlite(web)
    bot_file.write_text(BOT_YAML.replace("pairs: [ETH/BTC, LTC/BTC]", "pairs: [ETH/BTC]\nbogus: 1"), "utf-8")
    async with web.ctx.sessions() as db, db.begin():
        db.add(Bot(name="broken", config_path=str(bot_file), config_hash="", mode=BotMode.PAPER))
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/bot/broken")
        await user.should_see("The configuration has errors", retries=50)
        await user.should_see("bogus", retries=50)
        await user.should_not_see(ui.echart)


# ---- the chart alone -----------------------------------------------------------------------------


def test_indicator_series_features_by_name_then_rule_indicators(tmp_path: Path) -> None:
    from engine.config import load_strategy
    from engine.web.bot_chart import indicator_series

    path = tmp_path / "s.yaml"
    path.write_text(
        "strategy: s\ntimeframe: 5m\nfeatures:\n  trend: ema(close, 20)\n"
        "entry:\n  long: close > sma(close, 50) and rsi(close, 14) < 30\nexit:\n  long: close < trend\n",
        encoding="utf-8",
    )
    strategy = load_strategy(path)
    series = indicator_series(strategy.plan, list(strategy.model.features))
    assert next(iter(series)) == "trend"
    assert {"sma(close, 50)", "rsi(close, 14)"} <= set(series)
    assert "ema(close, 20)" not in series  # shown once, under the feature's name
    assert all("<" not in name and ">" not in name for name in series)  # no conditions


def test_markers_outside_the_shown_candles_are_left_out() -> None:
    from engine.web.bot_chart import candle_chart

    candles = synth_candles("ETH/BTC", "1h", START, periods=48, seed=3)
    trade = Trade(
        id=1,
        pair="ETH/BTC",
        side=PositionSide.LONG,
        open_time=candle_at(0).to_pydatetime() - pd.Timedelta(hours=5),  # before the first candle
        close_time=(START + pd.Timedelta(hours=10, minutes=30)).to_pydatetime(),
        open_price=Decimal(1),
        close_price=Decimal(2),
        exit_reason="exit_signal",
    )
    options = candle_chart("ETH/BTC", candles, candles.iloc[:, :0], [trade])
    series = {s["name"]: s for s in options["series"]}
    assert series["entries"]["data"] == []
    assert [e["value"] for e in series["exits"]["data"]] == [["2026-01-05 10:00", 2.0]]
    assert len(options["grid"]) == 1  # no lower panel without oscillators


def test_performance_uses_every_trade_given() -> None:
    from engine.web.ui.bot_page import performance

    opened = START.to_pydatetime()
    rows = [
        ("ETH/BTC", opened, opened + pd.Timedelta(hours=1), Decimal(p), 0.01, Decimal("0.001"))
        for p in ("0.02", "-0.01", "0.03")
    ]
    equity = [(opened + pd.Timedelta(hours=i), v) for i, v in enumerate((1.0, 1.02, 1.01, 1.04))]
    numbers = performance(rows, equity)
    assert numbers["Trades"] == "3"
    assert numbers["Win rate"] == "66.67 %"
    assert numbers["Return"] == "+4.00 %"
    assert numbers["Sharpe"].endswith("(only 3 trades: not meaningful yet)")
    assert performance(rows, equity, "BTC")["Fees"] == "0.00300000 BTC"
    assert numbers["Profit factor"] == "5.00"
    assert performance(rows, []) == {}


async def test_config_that_could_close_a_markdown_fence_is_plain_text(web: Web, bot_file: Path) -> None:
    require_sqlite(web)
    text = BOT_YAML + "# ```\n# <img src=x onerror=alert(1)>\n"
    bot_file.write_text(text, "utf-8")
    async with web.ctx.sessions() as db, db.begin():
        db.add(Bot(name="fenced", config_path=str(bot_file), config_hash="", mode=BotMode.PAPER))
    await web.add_user("vera", "viewer")
    async with user_simulation(root=None) as user:
        register_pages(web.ctx)
        await sign_in(user, web, "vera")
        await user.open("/bot/fenced")
        await user.should_see("Configuration", retries=50)
        await user.should_not_see(ui.code)
        await user.should_see(text, retries=50)
        await user.should_not_see(ui.image)
