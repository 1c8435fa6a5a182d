from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from logging.handlers import TimedRotatingFileHandler
from pathlib import Path

import pytest

from engine.observability import (
    CATEGORIES,
    LoggingSetup,
    SecretRegistry,
    bind_context,
    category_logger,
    category_of,
    current_context,
    log_event,
    set_context,
    setup_logging,
)

Setup = Callable[..., tuple[LoggingSetup, io.StringIO]]


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Setup]:
    installed: list[LoggingSetup] = []

    def make(**kwargs: object) -> tuple[LoggingSetup, io.StringIO]:
        stream = io.StringIO()
        options: dict[str, object] = {"mode": "paper", "console": "plain", "stream": stream}
        options.update(kwargs)
        directory = options.pop("log_dir", tmp_path / "logs")
        setup = setup_logging(directory, **options)  # type: ignore[arg-type]
        installed.append(setup)
        return setup, stream

    yield make
    for setup in installed:
        setup.close()


def read_lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_category_of_maps_logger_names() -> None:
    assert category_of("engine.trades") == "trades"
    assert category_of("engine.orders.binance") == "orders"
    assert category_of("engine.tradesman") == "engine"
    assert category_of("engine.runtime") == "engine"
    assert category_of("httpx") == "api_calls"
    assert category_of("ccxt.base.exchange") == "api_calls"
    assert category_of("somelib") == "engine"


def test_category_logger_refuses_unknown_names() -> None:
    assert category_logger("risk").name == "engine.risk"
    assert category_logger("orders", "binance").name == "engine.orders.binance"
    with pytest.raises(ValueError, match="unknown log category 'trade'"):
        category_logger("trade")


def test_each_category_goes_to_its_own_file_and_errors_collect_every_error(logs: Setup) -> None:
    setup, _ = logs()
    for category in CATEGORIES:
        category_logger(category).info("hello %s", category)
    logging.getLogger("engine.runtime").info("general line")
    logging.getLogger("engine.trades").error("trade failed")
    logging.getLogger("engine.runtime").critical("runtime down")
    setup.flush()

    for category in ("trades", "orders", "api_calls", "risk", "reload"):
        messages = [r["message"] for r in read_lines(setup.file_path(category))]
        expected = [f"hello {category}"] + (["trade failed"] if category == "trades" else [])
        assert messages == expected, category
    errors = [r["message"] for r in read_lines(setup.file_path("errors"))]
    assert errors == ["hello errors", "trade failed", "runtime down"]
    everything = [r["message"] for r in read_lines(setup.file_path("all"))]
    assert len(everything) == len(CATEGORIES) + 3
    assert "general line" in everything


def test_json_line_fields(logs: Setup) -> None:
    setup, _ = logs(mode="testnet")
    before = datetime.now(UTC) - timedelta(seconds=1)
    with bind_context(bot="btc-ema", pair="BTC/USDT"):
        log_event(category_logger("trades"), "trade opened", side="long", price=64210.5, qty=0.01)
    setup.flush()
    (line,) = read_lines(setup.file_path("trades"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["ts"]))
    ts = datetime.fromisoformat(str(line["ts"]).replace("Z", "+00:00"))
    assert before <= ts <= datetime.now(UTC) + timedelta(seconds=1)
    assert line == {
        "ts": line["ts"],
        "level": "INFO",
        "category": "trades",
        "mode": "testnet",
        "bot": "btc-ema",
        "pair": "BTC/USDT",
        "logger": "engine.trades",
        "message": "trade opened",
        "side": "long",
        "price": 64210.5,
        "qty": 0.01,
    }


def test_every_line_carries_the_mode_and_bot_when_known(logs: Setup) -> None:
    setup, _ = logs(mode="live")
    logging.getLogger("engine.orders").info("no bot yet")
    with bind_context(bot="eth-grid"):
        logging.getLogger("engine.orders").info("with bot")
        # An explicit value on the call wins over the context for that line only.
        log_event("engine.orders", "other bot", bot="sol-trend", pair="SOL/USDT", mode="paper")
    setup.flush()
    lines = read_lines(setup.file_path("orders"))
    assert [(r["mode"], r["bot"], r["pair"]) for r in lines] == [
        ("live", None, None),
        ("live", "eth-grid", None),
        ("paper", "sol-trend", "SOL/USDT"),
    ]


def test_log_event_fields_cannot_collide_with_record_attributes(logs: Setup) -> None:
    setup, _ = logs()
    log_event("engine.reload", "reloaded", name="bots/a.yaml", args=3, msg="x", levelname="nope")
    setup.flush()
    (line,) = read_lines(setup.file_path("reload"))
    assert line["level"] == "INFO"
    assert line["message"] == "reloaded"
    assert (line["name"], line["args"], line["msg"]) == ("bots/a.yaml", 3, "x")


async def test_context_is_per_asyncio_task_and_follows_threads(logs: Setup) -> None:
    setup, _ = logs()
    log = category_logger("trades")

    async def bot(name: str) -> None:
        set_context(bot=name)
        for i in range(5):
            log.info("tick %d", i)
            await asyncio.sleep(0)
        await asyncio.to_thread(log.info, "from a worker thread")

    await asyncio.gather(bot("alpha"), bot("beta"))
    assert current_context().bot is None  # the tasks' settings did not leak into the caller
    setup.flush()
    lines = read_lines(setup.file_path("trades"))
    assert len(lines) == 12
    for name in ("alpha", "beta"):
        mine = [r["message"] for r in lines if r["bot"] == name]
        assert mine == [f"tick {i}" for i in range(5)] + ["from a worker thread"]


def test_bind_context_restores_and_checks_the_mode() -> None:
    with bind_context(mode="backtest", bot="a"):
        with bind_context(bot="b"):
            assert current_context().bot == "b"
        assert current_context().bot == "a"
        assert current_context().mode == "backtest"
    assert current_context().bot is None
    with pytest.raises(ValueError, match="unknown mode 'prod'"), bind_context(mode="prod"):
        pass


def test_console_styles(logs: Setup) -> None:
    _, plain = logs(console="plain", log_dir=None)
    with bind_context(bot="b1"):
        log_event("engine.risk", "halted", reason="max drawdown", level=logging.WARNING)
    assert re.fullmatch(
        r"\S+Z WARNING risk \[paper b1\] halted reason=\"max drawdown\"\n", plain.getvalue()
    ), plain.getvalue()

    _, as_json = logs(console="json", log_dir=None)
    logging.getLogger("engine.risk").warning("halted")
    assert json.loads(as_json.getvalue())["message"] == "halted"

    _, rich = logs(console="rich", log_dir=None)
    # User text is printed as text: rich markup in a message is not interpreted.
    logging.getLogger("engine.risk").warning("bot [bold]x[/bold] halted")
    out = rich.getvalue()
    assert "WARNING" in out and "risk [paper] bot [bold]x[/bold] halted" in out


def test_setting_up_twice_replaces_the_handlers(logs: Setup) -> None:
    first, stream1 = logs(log_dir=None)
    second, stream2 = logs(log_dir=None)
    root = logging.getLogger()
    assert not set(first.handlers) & set(root.handlers)
    logging.getLogger("engine.trades").info("once")
    assert stream1.getvalue() == ""
    assert stream2.getvalue().count("once") == 1
    second.close()
    assert not set(second.handlers) & set(root.handlers)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retention_days": 0}, "retention_days must be at least 1"),
        ({"console": "fancy"}, "unknown console style 'fancy'"),
        ({"level": "LOUD"}, "unknown log level 'LOUD'"),
        ({"mode": "prod"}, "unknown mode 'prod'"),
    ],
)
def test_bad_settings_are_clear_errors(logs: Setup, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        logs(**kwargs)


def test_bad_log_arguments_do_not_raise(logs: Setup) -> None:
    setup, stream = logs()
    # Sent to our handlers directly: pytest's own capture handler on the root re-raises such errors.
    record = logging.getLogger("engine.orders").makeRecord(
        "engine.orders", logging.INFO, __file__, 1, "two %s %s", ("only-one",), None
    )
    for handler in setup.handlers:
        handler.handle(record)
    setup.flush()
    assert "bad log arguments" in stream.getvalue()


def test_daily_rotation_keeps_retention_days_files(logs: Setup) -> None:
    setup, _ = logs(retention_days=3, secrets=SecretRegistry())
    directory = setup.file_path("trades").parent
    log = category_logger("trades")
    log.info("day one")
    (handler,) = [
        h
        for h in setup.handlers
        if isinstance(h, TimedRotatingFileHandler) and h.baseFilename.endswith("trades.jsonl")
    ]
    assert handler.when == "MIDNIGHT" and handler.utc
    # The next rotation is at the coming midnight UTC.
    next_midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(handler.rolloverAt - next_midnight.timestamp()) <= 1
    for day in range(1, 6):
        (directory / f"trades.jsonl.2020-01-0{day}").write_text("old\n")

    handler.rolloverAt = int(time.time()) - 1  # pretend midnight just passed
    log.info("day two")
    setup.flush()

    yesterday = (datetime.fromtimestamp(handler.rolloverAt, UTC) - timedelta(days=2)).date()
    backups = sorted(p.name for p in directory.glob("trades.jsonl.*"))
    assert len(backups) == 3
    assert backups[:2] == ["trades.jsonl.2020-01-04", "trades.jsonl.2020-01-05"]
    assert backups[2] >= f"trades.jsonl.{yesterday.isoformat()}"
    rotated = read_lines(directory / backups[2])
    assert [r["message"] for r in rotated] == ["day one"]
    assert [r["message"] for r in read_lines(directory / "trades.jsonl")] == ["day two"]
