"""Downloads through the real ccxt client against the fake Binance server (tests/fakes)."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.data.download import DownloadEvent, RetryPolicy, download_candles
from engine.data.errors import DataError
from engine.data.exchange import create_exchange
from tests.engine.data.conftest import make_candles
from tests.fakes.binance_market import FakeMarket, walk_candles

NOW = "2024-01-04 00:00:30"  # mid-candle: the 1m candle opened at 00:00 is still open


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def ms(text: str) -> int:
    return int(ts(text).value // 1_000_000)


class Sleeps:
    """Records the backoff delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def run(server, store, pairs=("ETH/BTC",), timeframe="1m", since="2024-01-01", until=None, **kwargs):
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("config", {"rateLimit": 1})
    return await download_candles(
        "binance", list(pairs), timeframe, since, until, store=store, api_url=server.url, **kwargs
    )


@pytest.fixture
def eth(fake_binance):
    return fake_binance([FakeMarket.spot("ETH/BTC", walk_candles("2024-01-01", "2024-01-05"))], now=NOW)


async def test_paginates_and_stores_only_closed_candles(eth, store):
    [result] = await run(eth, store)
    assert result.ok and result.candles == 3 * 1440
    klines = eth.calls("/api/v3/klines")
    assert len(klines) == 5  # 4320 candles in pages of 1000
    assert [int(k.params["startTime"]) for k in klines[:2]] == [
        ms("2024-01-01"),
        ms("2024-01-01") + 1000 * 60_000,
    ]
    assert all(k.params["limit"] == "1000" for k in klines)
    stored = store.load("binance", "ETH/BTC", "1m")
    assert stored.index[0] == ts("2024-01-01") and stored.index[-1] == ts("2024-01-03 23:59")
    expected = walk_candles("2024-01-01", "2024-01-05").loc[:"2024-01-03 23:59"]
    pd.testing.assert_frame_equal(stored, expected, check_freq=False)
    entry = store.entry("binance", "ETH/BTC", "1m")
    assert entry.source == "ccxt:binance" and not entry.synthetic
    assert entry.fetched == ((ts("2024-01-01"), ts("2024-01-04")),)


async def test_higher_timeframes_drop_the_open_candle(fake_binance, store):
    server = fake_binance(
        [FakeMarket.spot("ETH/BTC", walk_candles("2024-01-01", "2024-01-05"))], now="2024-01-03 10:20"
    )
    [result] = await run(server, store, timeframe="1h")
    assert result.candles == 2 * 24 + 10
    stored = store.load("binance", "ETH/BTC", "1h")
    assert stored.index[-1] == ts("2024-01-03 09:00")  # 10:00 is still open at 10:20
    assert len(server.calls("/api/v3/klines")) == 1


async def test_resume_fetches_only_what_is_new(eth, store):
    await run(eth, store, until="2024-01-02 12:00")
    assert store.entry("binance", "ETH/BTC", "1m").end == ts("2024-01-02 11:59")
    before = len(eth.calls("/api/v3/klines"))
    [result] = await run(eth, store)
    new_calls = eth.calls("/api/v3/klines")[before:]
    assert int(new_calls[0].params["startTime"]) == ms("2024-01-02 12:00")
    assert result.candles == 1440 + 720
    # Up to date: a third run asks nothing.
    before = len(eth.calls("/api/v3/klines"))
    [result] = await run(eth, store)
    assert result.up_to_date and result.candles == 0
    assert len(eth.calls("/api/v3/klines")) == before
    # An earlier start fetches just the missing head.
    eth_early = walk_candles("2023-12-31", "2024-01-05")
    eth.market_data.add(FakeMarket.spot("ETH/BTC", eth_early))
    before = len(eth.calls("/api/v3/klines"))
    [result] = await run(eth, store, since="2023-12-31 12:00")
    head = eth.calls("/api/v3/klines")[before:]
    assert len(head) == 1 and int(head[0].params["endTime"]) == ms("2024-01-01") - 1
    assert result.candles == 720


async def test_rate_limit_waits_at_least_retry_after(eth, store):
    eth.faults.add("/api/v3/klines", status=429, retry_after=7)
    sleeps = Sleeps()
    events: list[DownloadEvent] = []
    [result] = await run(eth, store, sleep=sleeps, listener=events.append)
    assert result.ok and result.candles == 3 * 1440 and result.retries == 1
    assert sleeps.delays[0] >= 7
    retry = next(e for e in events if e.kind == "retry")
    assert "DDoSProtection" in retry.message or "RateLimitExceeded" in retry.message
    assert [r.status for r in eth.calls("/api/v3/klines")][:2] == [429, 200]


async def test_server_errors_back_off_exponentially_with_jitter(eth, store):
    eth.faults.add("/api/v3/klines", status=503, times=3)
    sleeps = Sleeps()
    policy = RetryPolicy(base_delay=1.0, jitter=0.25)
    [result] = await run(eth, store, sleep=sleeps, retry=policy)
    assert result.ok and result.retries == 3
    assert 1.0 <= sleeps.delays[0] <= 1.25
    assert 2.0 <= sleeps.delays[1] <= 2.5
    assert 4.0 <= sleeps.delays[2] <= 5.0
    assert len(set(sleeps.delays)) == 3


async def test_timeouts_and_dropped_connections_are_retried(eth, store):
    eth.faults.add("/api/v3/klines", delay=1.0)
    eth.faults.add("/api/v3/klines", drop=True, times=2)
    [result] = await run(eth, store, config={"rateLimit": 1, "timeout": 300})
    assert result.ok and result.candles == 3 * 1440
    assert result.retries >= 2


async def test_exhausted_retries_keep_what_was_fetched_and_resume_later(eth, store):
    eth.faults.add("/api/v3/klines", status=502, after=2, times=3)  # two good pages, then down for good
    [result] = await run(eth, store, retry=RetryPolicy(attempts=3))
    assert not result.ok
    assert result.diagnostics[0].code == "DATA017"
    assert "ExchangeNotAvailable" in result.diagnostics[0].message
    assert result.candles == 2000
    entry = store.entry("binance", "ETH/BTC", "1m")
    assert entry.rows == 2000
    assert entry.fetched == ((ts("2024-01-01"), ts("2024-01-01") + pd.Timedelta(minutes=2000)),)
    [result] = await run(eth, store)  # the server is back: continue from candle 2000
    assert result.ok and result.candles == 3 * 1440 - 2000
    assert store.entry("binance", "ETH/BTC", "1m").rows == 3 * 1440


async def test_periodic_saves_bound_the_loss_of_a_crash(eth, store, monkeypatch):
    from engine.data.store import CandleStore

    saved_rows: list[int] = []
    original = CandleStore.save

    def spy(self, *args, **kwargs):
        entry = original(self, *args, **kwargs)
        saved_rows.append(entry.rows)
        return entry

    monkeypatch.setattr(CandleStore, "save", spy)
    await run(eth, store, save_every=2)
    assert saved_rows == [2000, 4000, 4320]


async def test_outages_are_reported_as_gaps(fake_binance, store):
    candles = walk_candles("2024-01-01", "2024-01-03", outages=(("2024-01-01 10:00", "2024-01-01 10:30"),))
    server = fake_binance([FakeMarket.spot("ETH/BTC", candles)], now="2024-01-02 00:00:10")
    [result] = await run(server, store)
    assert result.gaps == [(ts("2024-01-01 10:00"), ts("2024-01-01 10:30"))]
    assert store.entry("binance", "ETH/BTC", "1m").gaps == ((ts("2024-01-01 10:00"), ts("2024-01-01 10:30")),)
    assert store.entry("binance", "ETH/BTC", "1m").missing_candles == 30


async def test_history_before_a_listing_is_not_a_gap(fake_binance, store):
    server = fake_binance(
        [FakeMarket.spot("ETH/BTC", walk_candles("2024-01-02", "2024-01-03"))], now="2024-01-03"
    )
    [result] = await run(server, store, since="2023-12-25")
    assert result.gaps == [] and result.candles == 1440
    entry = store.entry("binance", "ETH/BTC", "1m")
    assert entry.fetched == ((ts("2023-12-25"), ts("2024-01-03")),)
    before = len(server.calls("/api/v3/klines"))
    await run(server, store, since="2023-12-25")
    assert len(server.calls("/api/v3/klines")) == before  # the empty week is not asked again


async def test_unknown_pairs_do_not_stop_the_others(eth, store):
    results = await run(eth, store, pairs=["ETH/BTX", "ETH/BTC"])
    assert [r.pair for r in results] == ["ETH/BTX", "ETH/BTC"]
    assert not results[0].ok and "did you mean 'ETH/BTC'" in results[0].diagnostics[0].message
    assert results[1].ok and results[1].candles == 3 * 1440


async def test_futures_pairs_use_the_futures_api(fake_binance, store):
    server = fake_binance(
        [FakeMarket.futures("XRP/USDT:USDT", walk_candles("2024-01-01", "2024-01-02", start_price=0.5))],
        now="2024-01-02",
    )
    [result] = await run(server, store, pairs=["XRP/USDT:USDT"], timeframe="5m")
    assert result.ok and result.candles == 288
    assert len(server.calls("/fapi/v1/klines")) == 1 and not server.calls("/api/v3/klines")
    assert (store.root / "binance" / "XRP_USDT_USDT-5m-futures.parquet").is_file()


async def test_real_download_replaces_a_synthetic_sample(eth, store):
    store.save(
        "binance", "ETH/BTC", "1m", make_candles(periods=50, freq="1min"), source="synth", synthetic=True
    )
    [result] = await run(eth, store, until="2024-01-01 01:00")
    entry = store.entry("binance", "ETH/BTC", "1m")
    assert result.candles == 60 and not entry.synthetic and entry.rows == 60
    pd.testing.assert_frame_equal(
        store.load("binance", "ETH/BTC", "1m"),
        walk_candles("2024-01-01", "2024-01-05").loc[:"2024-01-01 00:59"],
        check_freq=False,
    )


async def test_unreachable_exchange_and_unknown_names_are_clear_errors(store):
    with pytest.raises(DataError, match=r"unknown exchange 'binanse'.*did you mean 'binance'"):
        create_exchange("binanse")
    with pytest.raises(DataError, match="cannot reach binance"):
        await download_candles(
            "binance",
            ["ETH/BTC"],
            "1m",
            "2024-01-01",
            store=store,
            api_url="http://127.0.0.1:9",
            retry=RetryPolicy(attempts=2),
            sleep=Sleeps(),
            config={"timeout": 500},
        )


def test_api_url_rebases_every_endpoint():
    exchange = create_exchange("binance", api_url="http://127.0.0.1:1234")
    api = exchange.urls["api"]
    assert api["public"] == "http://127.0.0.1:1234/api/v3"
    assert api["fapiPublic"] == "http://127.0.0.1:1234/fapi/v1"
    assert exchange.options["fetchMarkets"]["types"] == ["spot"]
    assert exchange.options["fetchCurrencies"] is False
    assert exchange.enableRateLimit
