"""Futures testnet bots against the signed fake Binance, through make_exchange and the real ccxt client: on
start each pair gets the bot's margin mode and leverage (before any order), a restart changes nothing
(Binance's -4046 "no need to change margin type" is success), and a refusal is a start error of that bot
only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from engine.config import load_bot
from engine.data import DataDirectory
from engine.data.naming import candle_filename
from engine.exchanges import make_exchange
from engine.runtime import BotRunner, PortfolioLimits, PortfolioRisk, ReplayFeed
from engine.runtime.execution import ExchangeStartError
from tests.engine.exchanges.fake import API_KEY, SECRET
from tests.engine.runtime.helpers import database, db_events, make_runtime
from tests.fakes.binance_futures import FakeFutures
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance

ENV = {"FAKE_BINANCE_KEY": API_KEY, "FAKE_BINANCE_SECRET": SECRET}
PAIRS = ("XRP/USDT:USDT", "DOGE/USDT:USDT")
MARGIN, LEVERAGE = "/fapi/v1/marginType", "/fapi/v1/leverage"

STRATEGY = """\
strategy: flip
description: enters after two rising candles, leaves on a falling one
timeframe: 1m
entry:
  long: close > open and close[1] > open[1]
exit:
  long: close < open
"""


def bot_yaml(name: str, pairs: tuple[str, ...], settings: str) -> str:
    return f"""\
bot: {name}
strategy: ../strategies/flip.yaml
exchange:
  name: binance
  mode: testnet
  market: futures
  credentials: {{key: env:FAKE_BINANCE_KEY, secret: env:FAKE_BINANCE_SECRET}}
{settings}pairs: [{", ".join(pairs)}]
capital:
  initial: 1000 USDT
  max_per_trade: 20%
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, FakeBinance, FakeFutures]]:
    """Strategy, replay candles of both pairs, and a fake Binance listing them as USD-M perpetuals with a
    futures account whose DOGE bracket stops at leverage 20."""
    for name in ("strategies", "bots", "data"):
        (tmp_path / name).mkdir()
    (tmp_path / "strategies" / "flip.yaml").write_text(STRATEGY)
    now = pd.Timestamp.now(tz="UTC").floor("min")
    markets = []
    for seed, pair in enumerate(PAIRS):
        candles = walk_candles(
            (now - pd.Timedelta(minutes=120)).isoformat(), now.isoformat(), start_price=0.5, seed=seed + 1
        )
        candles.to_parquet(tmp_path / "data" / candle_filename(pair, "1m"))
        markets.append(FakeMarket.futures(pair, candles, tick_size="0.0001", step_size="1", min_notional="5"))
    server = FakeBinance(markets).start()
    account = FakeFutures.install(server, API_KEY, SECRET, {"USDT": "5000"}, max_leverage={"DOGEUSDT": 20})
    try:
        yield tmp_path, server, account
    finally:
        server.stop()


def _to_the_fake(server: FakeBinance):  # type: ignore[no-untyped-def]
    """make_exchange with the fake's URLs and the test's environment (as the runtime calls it)."""
    config = server.ccxt_config(futures=True)

    def make(model, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.update(
            api_urls=server.ccxt_urls(),
            environ=ENV,
            options={"options": config["options"], "rateLimit": 1, "timeout": 3000},
        )
        return make_exchange(model, **kwargs)

    return make


async def _start(root: Path, factory, server: FakeBinance, name: str) -> BotRunner:  # type: ignore[no-untyped-def]
    loaded = load_bot(root / "bots" / f"{name}.yaml")
    exchange = _to_the_fake(server)(loaded.model, session_factory=factory)
    feed = ReplayFeed(DataDirectory(root / "data"))
    runner = BotRunner(loaded, factory, feed, PortfolioRisk(PortfolioLimits()), exchange=exchange)
    try:
        await runner.start()
    except BaseException:
        await exchange.close()
        raise
    return runner


def _posts(server: FakeBinance, path: str) -> list[tuple[str, int]]:
    return [(r.params["symbol"], r.status) for r in server.calls(path) if r.method == "POST"]


async def test_start_sets_margin_mode_and_leverage_per_pair_and_a_restart_changes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    root, server, account = world
    (root / "bots" / "fut.yaml").write_text(
        bot_yaml("fut", PAIRS, "  leverage: 3\n  margin_mode: isolated\n")
    )
    async with database(root) as factory:
        runner = await _start(root, factory, server, "fut")
        await runner.close()
        assert account.margin_types == {"XRPUSDT": "ISOLATED", "DOGEUSDT": "ISOLATED"}
        assert account.leverages == {"XRPUSDT": 3, "DOGEUSDT": 3}
        # Before anything else signed that could trade: the settings follow the authentication only.
        signed = [r.path for r in server.requests if r.path.startswith("/fapi/v1/") and r.method == "POST"]
        assert signed == [MARGIN, LEVERAGE, MARGIN, LEVERAGE]
        changes = list(account.changes)

        again = await _start(root, factory, server, "fut")  # a restart: already isolated
        await again.close()
    assert _posts(server, MARGIN)[2:] == [("XRPUSDT", 400), ("DOGEUSDT", 400)]  # -4046, taken as done
    assert account.changes == [*changes, ("XRPUSDT", "leverage", 3), ("DOGEUSDT", "leverage", 3)]
    assert account.margin_types == {"XRPUSDT": "ISOLATED", "DOGEUSDT": "ISOLATED"}


async def test_defaults_are_isolated_margin_and_leverage_one_and_cross_is_applied(world) -> None:  # type: ignore[no-untyped-def]
    root, server, account = world
    (root / "bots" / "plain.yaml").write_text(bot_yaml("plain", PAIRS[:1], ""))
    (root / "bots" / "cross.yaml").write_text(bot_yaml("cross", PAIRS[1:], "  margin_mode: cross\n"))
    async with database(root) as factory:
        for name in ("plain", "cross"):
            await (await _start(root, factory, server, name)).close()
    assert account.margin_types == {"XRPUSDT": "ISOLATED"}  # DOGE was CROSSED already: -4046
    assert _posts(server, MARGIN) == [("XRPUSDT", 200), ("DOGEUSDT", 400)]
    assert account.margin_type("DOGEUSDT") == "CROSSED"
    assert account.leverages == {"XRPUSDT": 1, "DOGEUSDT": 1}


async def test_a_refused_leverage_is_a_clear_start_error(world) -> None:  # type: ignore[no-untyped-def]
    root, server, account = world
    (root / "bots" / "high.yaml").write_text(bot_yaml("high", PAIRS, "  leverage: 50\n"))
    async with database(root) as factory:
        with pytest.raises(ExchangeStartError) as caught:
            await _start(root, factory, server, "high")
    message = str(caught.value)
    assert "cannot set leverage 50 on DOGE/USDT:USDT" in message and "-4028" in message
    assert "binance testnet" in message and API_KEY not in message
    assert account.leverages == {"XRPUSDT": 50}  # XRP's bracket allowed it; DOGE stopped the start


async def test_a_refused_bot_is_reported_and_the_others_run(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import engine.exchanges

    root, server, account = world
    (root / "bots" / "ok.yaml").write_text(bot_yaml("ok", PAIRS[:1], "  leverage: 5\n"))
    (root / "bots" / "high.yaml").write_text(bot_yaml("high", PAIRS[1:], "  leverage: 25\n"))
    monkeypatch.setattr(engine.exchanges, "make_exchange", _to_the_fake(server))
    async with database(root) as factory:
        runtime = make_runtime(root, factory)
        await runtime.start()
        try:
            assert runtime.runner("ok").view.status == "running"
            with pytest.raises(KeyError):
                runtime.runner("high")
            errors = list(runtime.file_errors.values())
        finally:
            await runtime.stop()
        failed = await db_events(factory, "error", "bot_start_failed")
    assert account.leverages == {"XRPUSDT": 5}
    (text,) = errors
    assert text.startswith("high: cannot start:") and "cannot set leverage 25 on DOGE/USDT:USDT" in text
    assert [e.message for e in failed] == [text]
