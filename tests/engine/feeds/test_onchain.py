"""Etherscan API V2 and Whale Alert exchange flows through the real HTTP client against fake servers on
127.0.0.1 that speak their wire formats (errors as HTTP 200 bodies, pagination, cursors)."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pandas as pd
import pytest

from engine.config._feeds import load_feeds
from engine.feeds.http import BadResponse, RateLimited, ServiceError, Unreachable
from engine.feeds.service import FeedService
from engine.feeds.sources._flows import SHIPPED_LABELS, Flow, hourly_flows, load_labels
from engine.feeds.sources.base import FetchRequest
from engine.feeds.store import read_health, read_series
from engine.store import create_engine_for, session_factory, upgrade_async
from engine.store.events import list_events
from tests.fakes.onchain_services import FakeEtherscan, FakeWhaleAlert

KEY = "ETHKEY0123456789SECRET"
WHALE_KEY = "WHALEKEY98765SECRET"
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
BINANCE = "0x28c6c06298d514db089934071355e5743bf21d60"
COINBASE = "0x71660c4005ba85c37ccec55d0c4493e66fe775d3"
USER = "0x1111111111111111111111111111111111111111"
MIDNIGHT = int(pd.Timestamp("2024-01-02", tz="UTC").timestamp())
NOW = MIDNIGHT + 300  # 00:05: the hour 23:00-00:00 is over (plus the 2 min lag)
H = 3600
NS = 1_000_000_000

FEEDS = f"""\
feeds:
  usdt: {{source: etherscan, token: "{USDT}", min_value: 1000}}
  usdt_bsc: {{source: etherscan, token: "{USDT}", chain: 56, labels: my_wallets.csv}}
  whales: {{source: whale_alert, symbol: USDT, history_days: 1}}
services:
  etherscan: {{key: env:ETHERSCAN_KEY, timeout: 1s}}
  whale_alert: {{key: env:WHALE_ALERT_KEY}}
"""


@pytest.fixture
async def sessions(tmp_path: Path):
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await upgrade_async(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def etherscan():
    with FakeEtherscan(api_key=KEY, now_s=NOW) as fake:
        yield fake


@pytest.fixture
def whale():
    with FakeWhaleAlert(api_key=WHALE_KEY, now_s=NOW) as fake:
        yield fake


def make_service(
    tmp_path: Path, sessions, urls: dict[str, str], clock_s=lambda: NOW, retries: int = 0
) -> FeedService:
    (tmp_path / "feeds.yaml").write_text(FEEDS)
    feeds = load_feeds(tmp_path)
    assert not feeds.diagnostics, feeds.diagnostics
    service = FeedService(
        feeds,
        sessions,
        root=tmp_path,
        environ={"ETHERSCAN_KEY": KEY, "WHALE_ALERT_KEY": WHALE_KEY},
        base_urls=urls,
        clock=lambda: clock_s() * NS,
        retries=retries,
        backoff=0.01,
    )
    return service


def fast(service: FeedService):
    source = service.source("etherscan")
    source.spacing, source.pause_s = 0.0, 0.01
    return source


async def values(sessions, key: str) -> list[tuple[int, int, float]]:
    async with sessions() as session:
        series = await read_series(session, key)
    return [
        (int(e), int(a), float(v))
        for e, a, v in zip(series.event_time, series.available_at, series.value, strict=True)
    ]


# ---- hourly sums by hand ----------------------------------------------------------------------


def test_hourly_flows_by_hand() -> None:
    t10 = MIDNIGHT + 10 * H
    flows = [
        Flow(t10 + 900, 100.0, inflow=True),
        Flow(t10 + 1800, 40.0, inflow=False),
        Flow(t10 + 3599, 2000.0, inflow=True),
        Flow(t10 + 3600, 5.0, inflow=False),
        Flow(t10 + 3 * H, 7.0, inflow=True),  # outside the range
    ]
    hours = hourly_flows(flows, t10 + 60, t10 + 3 * H, min_value=1000)
    assert sorted(hours) == [t10, t10 + H, t10 + 2 * H]
    assert hours[t10].values() == {
        "inflow": 2100.0,
        "outflow": 40.0,
        "netflow": 2060.0,
        "large_transfers": 1.0,
    }
    assert hours[t10 + H].values() == {"inflow": 0.0, "outflow": 5.0, "netflow": -5.0, "large_transfers": 0.0}
    assert hours[t10 + 2 * H].values() == {
        "inflow": 0.0,
        "outflow": 0.0,
        "netflow": 0.0,
        "large_transfers": 0.0,
    }


def test_shipped_labels_are_well_formed_and_sourced(tmp_path: Path) -> None:
    labels = load_labels([SHIPPED_LABELS])
    assert len(labels) >= 10 and {chain for chain, _ in labels} == {1, 56}
    assert all(label.source and label.exchange for label in labels.values())
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "address,exchange,chain\n0x28c6c06298d514db089934071355e5743bf21d60,binance,1\n0x12,kraken,1\n"
    )
    with pytest.raises(ValueError, match=r"bad.csv:3: '0x12' is not an address"):
        load_labels([bad])
    bad.write_text("address,chain\n")
    with pytest.raises(ValueError, match=r"bad.csv:1: the wallet labels need the column\(s\) exchange"):
        load_labels([bad])


# ---- Etherscan ---------------------------------------------------------------------------------


def seed_transfers(fake: FakeEtherscan) -> None:
    t22, t23 = MIDNIGHT - 2 * H, MIDNIGHT - H
    fake.add_transfer(t22 + 600, USER, BINANCE, "180000000")  # 180 USDT in (6 decimals)
    fake.add_transfer(t22 + 1200, BINANCE, USER, "50500000")  # 50.5 out
    fake.add_transfer(t22 + 1800, BINANCE, COINBASE, "1000000000")  # between exchanges: neither
    fake.add_transfer(t23 + 600, USER, COINBASE, "2500000000")  # 2,500 in: large at min_value 1000
    fake.add_transfer(MIDNIGHT + 60, USER, BINANCE, "9000000")  # the open hour: not yet
    fake.add_transfer(t22 + 900, USER, BINANCE, "7", token="0x" + "ab" * 20)  # another token


async def test_etherscan_flows_per_hour(tmp_path: Path, sessions, etherscan: FakeEtherscan) -> None:
    seed_transfers(etherscan)
    service = make_service(tmp_path, sessions, {"etherscan": etherscan.url})
    fast(service)
    try:
        result = await service.refresh("usdt")
    finally:
        await service.aclose()
    assert result.ok, result.errors
    inflow = await values(sessions, "usdt.inflow")
    assert len(inflow) == 48  # two days of complete hours, quiet ones as zeros
    by_hour = {e // NS: (a // NS, v) for e, a, v in inflow}
    assert by_hour[MIDNIGHT - 2 * H] == (MIDNIGHT - H + 120, 180.0)  # known at the hour's end + 2 min
    assert by_hour[MIDNIGHT - H] == (MIDNIGHT + 120, 2500.0)
    outflow = {e // NS: v for e, _, v in await values(sessions, "usdt.outflow")}
    netflow = {e // NS: v for e, _, v in await values(sessions, "usdt.netflow")}
    large = {e // NS: v for e, _, v in await values(sessions, "usdt.large_transfers")}
    assert outflow[MIDNIGHT - 2 * H] == 50.5 and netflow[MIDNIGHT - 2 * H] == 129.5
    assert large[MIDNIGHT - 2 * H] == 0 and large[MIDNIGHT - H] == 1
    assert sum(v for _, _, v in inflow) == 2680.0
    # One block look-up, then one tokentx query per labelled Ethereum wallet, the key in the query.
    (block,) = etherscan.calls(action="getblocknobytime")
    assert block.query["timestamp"] == str(MIDNIGHT - 48 * H) and block.query["closest"] == "after"
    token_calls = etherscan.calls(action="tokentx")
    wallets = {a for (chain, a) in load_labels([SHIPPED_LABELS]) if chain == 1}
    assert {c.query["address"] for c in token_calls} == wallets
    first = token_calls[0].query
    assert first["chainid"] == "1" and first["contractaddress"] == USDT and first["apikey"] == KEY
    assert first["startblock"] == str(FakeEtherscan.block_at(MIDNIGHT - 48 * H)) and first["sort"] == "asc"


async def test_etherscan_pages_and_moves_the_block_window(tmp_path: Path, sessions) -> None:
    with FakeEtherscan(api_key=KEY, now_s=NOW, max_window=4) as fake:
        for i in range(9):
            fake.add_transfer(MIDNIGHT - H + 60 * i, USER, BINANCE, f"{i + 1}000000")
        service = make_service(tmp_path, sessions, {"etherscan": fake.url})
        source = fast(service)
        source.offset, source.window = 2, 4
        try:
            result = await service.refresh("usdt")
        finally:
            await service.aclose()
        assert result.ok, result.errors
        calls = [c.query for c in fake.calls(action="tokentx", address=BINANCE)]
    # Pages 1 and 2 of each window (never past page x offset = 4), then a new window from the last block.
    assert {c["page"] for c in calls} == {"1", "2"}
    starts = [int(c["startblock"]) for c in calls]
    assert len(set(starts)) >= 3 and starts == sorted(starts)
    inflow = {e // NS: v for e, _, v in await values(sessions, "usdt.inflow")}
    assert inflow[MIDNIGHT - H] == sum(range(1, 10))  # every transfer once


async def test_etherscan_errors_come_as_http_200(
    tmp_path: Path, sessions, etherscan: FakeEtherscan, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    seed_transfers(etherscan)
    service = make_service(tmp_path, sessions, {"etherscan": etherscan.url})
    source = fast(service)
    feed = service.feeds.feeds["usdt"]
    request = FetchRequest(feed, feed.members, None, NOW * NS)
    try:
        # A rate-limit body once: retried after a pause, then fine.
        etherscan.body_error("Max calls per sec rate limit reached (3/sec)")
        assert len(await source.fetch(request)) == 48 * 4
        for _ in range(3):
            etherscan.body_error("Max calls per sec rate limit reached (3/sec)")
        with pytest.raises(RateLimited, match="rate limit"):
            await source.fetch(request)
        etherscan.body_error("Invalid API Key (#err2)|ETH1")
        with pytest.raises(ServiceError, match="Invalid API Key"):
            await source.fetch(request)
        etherscan.fail(200, b"<html>Bad gateway</html>")
        with pytest.raises(BadResponse, match="not JSON"):
            await source.fetch(request)
        etherscan.fail(200, {"status": "1", "message": "OK", "result": {"rows": 1}})
        with pytest.raises(BadResponse, match="unexpected result"):
            await source.fetch(request)
        etherscan.fail(200, {"message": "OK"})
        with pytest.raises(BadResponse, match="status and result"):
            await source.fetch(request)
        # Through the service: a 429 marks the source degraded, with an event; a retry recovers it.
        etherscan.fail(429, b"Too Many Requests", {"Retry-After": "0"})
        result = await service.refresh("usdt")
        assert "HTTP 429" in result.errors["etherscan"] and service.states()["etherscan"] == "degraded"
        result = await service.refresh("usdt")
        assert result.ok and service.states()["etherscan"] == "ok"
        # A timeout (the service's timeout is 1 s).
        etherscan.fail(200, {"status": "1", "message": "OK", "result": "1"}, delay=1.5)
        with pytest.raises(Unreachable, match="timed out"):
            await source.fetch(request)
        # The key never shows: not in errors, events, health, or any engine log line.
        async with sessions() as session:
            events = await list_events(session)
            health = await read_health(session)
        assert events and all(KEY not in e.message and KEY not in str(e.data) for e in events)
        assert all(KEY not in (h.last_error or "") for h in health)
        engine_lines = [
            r.getMessage() + str(r.__dict__) for r in caplog.records if r.name.startswith("engine")
        ]
        assert engine_lines and not [line for line in engine_lines if KEY in line]
    finally:
        await service.aclose()


async def test_etherscan_empty_malformed_and_unreachable(
    tmp_path: Path, sessions, etherscan: FakeEtherscan
) -> None:
    etherscan.add_transfer(MIDNIGHT - H + 10, USER, BINANCE, "1000000")
    etherscan.add_raw(
        {
            "blockNumber": str(FakeEtherscan.block_at(MIDNIGHT - H + 20)),
            "timeStamp": str(MIDNIGHT - H + 20),
            "hash": "0xbad",
            "from": USER,
            "to": BINANCE,
            "value": "lots",
            "tokenDecimal": "6",
            "contractAddress": USDT,
        }
    )
    etherscan.add_raw(
        {
            "blockNumber": str(FakeEtherscan.block_at(MIDNIGHT - H + 30)),
            "hash": "0xbad2",
            "from": USER,
            "to": BINANCE,
            "value": "5",
            "contractAddress": USDT,
        }
    )
    service = make_service(tmp_path, sessions, {"etherscan": etherscan.url})
    fast(service)
    try:
        result = await service.refresh("usdt")
        assert result.ok, result.errors
    finally:
        await service.aclose()
    inflow = {e // NS: v for e, _, v in await values(sessions, "usdt.inflow")}
    assert inflow[MIDNIGHT - H] == 1.0  # the malformed rows are skipped, never stored
    # Two hours on, with nothing listening there.
    refused = make_service(
        tmp_path, sessions, {"etherscan": "http://127.0.0.1:9"}, clock_s=lambda: NOW + 2 * H
    )
    try:
        result = await refused.refresh("usdt")
    finally:
        await refused.aclose()
    assert "ConnectError" in result.errors["etherscan"] and refused.states()["etherscan"] == "degraded"


async def test_bnb_chain_and_user_labels(tmp_path: Path, sessions) -> None:
    mine = "0x2222222222222222222222222222222222222222"
    (tmp_path / "my_wallets.csv").write_text(f"address,exchange,chain\n{mine},somex,56\n")
    with FakeEtherscan(api_key=KEY, now_s=NOW) as fake:
        fake.add_transfer(MIDNIGHT - H + 5, USER, mine, "3000000000000000000", decimals=18, chain=56)
        fake.add_transfer(MIDNIGHT - H + 6, mine, USER, "1000000000000000000", decimals=18, chain=56)
        service = make_service(tmp_path, sessions, {"etherscan": fake.url})
        fast(service)
        try:
            result = await service.refresh("usdt_bsc")
        finally:
            await service.aclose()
        assert result.ok, result.errors
        assert {c.query["chainid"] for c in fake.requests} == {"56"}
        assert mine in {c.query.get("address") for c in fake.requests}
    netflow = {e // NS: v for e, _, v in await values(sessions, "usdt_bsc.netflow")}
    assert netflow[MIDNIGHT - H] == 2.0
    (tmp_path / "my_wallets.csv").write_text("address,exchange,chain\nnot-an-address,x,56\n")
    with FakeEtherscan(api_key=KEY, now_s=NOW, chains=(1,)) as fake:
        service = make_service(tmp_path, sessions, {"etherscan": fake.url})
        fast(service)
        feed = service.feeds.feeds["usdt_bsc"]
        try:
            with pytest.raises(BadResponse, match=r"my_wallets.csv:2: 'not-an-address' is not an address"):
                await service.source("etherscan").fetch(FetchRequest(feed, feed.members, None, NOW * NS))
            (tmp_path / "my_wallets.csv").write_text(f"address,exchange,chain\n{mine},somex,56\n")
            with pytest.raises(ServiceError, match="unsupported chainid"):
                await service.source("etherscan").fetch(FetchRequest(feed, feed.members, None, NOW * NS))
        finally:
            await service.aclose()


async def test_etherscan_keeps_to_three_calls_a_second(tmp_path: Path, sessions) -> None:
    with FakeEtherscan(api_key=KEY, now_s=NOW, per_second=3) as fake:
        service = make_service(tmp_path, sessions, {"etherscan": fake.url})
        try:
            result = await service.refresh("usdt")  # 11 calls at the real spacing
        finally:
            await service.aclose()
        assert result.ok, result.errors
        times = [r.time for r in fake.requests]
    # The fake refuses a 4th call within a second (per_second=3), so 11 calls means none was refused.
    assert len(times) == 11
    # Sent 0.35 s apart; arrival times on a loaded machine jitter by a few tens of milliseconds.
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(times))


# ---- Whale Alert ---------------------------------------------------------------------------------


def seed_whales(fake: FakeWhaleAlert) -> None:
    t22 = MIDNIGHT - 2 * H
    fake.add(t22 + 60, 1_000_000, to_type="exchange", usd=1_000_000)
    fake.add(t22 + 120, 400_000, from_type="exchange", usd=600_000)
    fake.add(t22 + 180, 50_000_000, from_type="exchange", to_type="exchange", usd=50_000_000)  # neither
    fake.add(t22 + 240, 700_000, usd=700_000)  # unknown to unknown: no exchange flow
    fake.add(t22 + 300, 20, symbol="btc", to_type="exchange", usd=1_300_000)  # another asset
    fake.add(t22 + 360, 900_000, to_type="exchange", usd=100_000)  # below min_value
    fake.add(MIDNIGHT + 30, 5_000_000, to_type="exchange", usd=5_000_000)  # the open hour


async def test_whale_alert_flows_per_hour_with_cursor_pages(
    tmp_path: Path, sessions, whale: FakeWhaleAlert
) -> None:
    seed_whales(whale)
    service = make_service(tmp_path, sessions, {"whale_alert": whale.url})
    service.source("whale_alert").limit = 2
    try:
        result = await service.refresh("whales")
    finally:
        await service.aclose()
    assert result.ok, result.errors
    inflow = {e // NS: (a // NS, v) for e, a, v in await values(sessions, "whales.inflow")}
    assert len(inflow) == 24
    assert inflow[MIDNIGHT - 2 * H] == (MIDNIGHT - H + 120, 1_000_000.0)
    assert inflow[MIDNIGHT - H] == (MIDNIGHT + 120, 0.0)
    outflow = {e // NS: v for e, _, v in await values(sessions, "whales.outflow")}
    netflow = {e // NS: v for e, _, v in await values(sessions, "whales.netflow")}
    count = {e // NS: v for e, _, v in await values(sessions, "whales.large_transfers")}
    assert outflow[MIDNIGHT - 2 * H] == 400_000 and netflow[MIDNIGHT - 2 * H] == 600_000
    assert count[MIDNIGHT - 2 * H] == 2
    queries = [r.query for r in whale.requests]
    assert queries[0]["api_key"] == WHALE_KEY and queries[0]["min_value"] == "500000"
    assert queries[0]["start"] == str(MIDNIGHT - 24 * H) and queries[0]["currency"] == "usdt"
    assert "cursor" not in queries[0] and all("cursor" in q for q in queries[1:]) and len(queries) >= 3


async def test_whale_alert_faults(tmp_path: Path, sessions, whale: FakeWhaleAlert) -> None:
    seed_whales(whale)
    service = make_service(tmp_path, sessions, {"whale_alert": whale.url})
    source = service.source("whale_alert")
    feed = service.feeds.feeds["whales"]
    request = FetchRequest(feed, feed.members, None, NOW * NS)
    try:
        whale.fail(200, {"result": "success", "cursor": "x", "count": 0})  # transactions absent
        got = await source.fetch(request)
        assert len(got) == 24 * 4 and all(o.value == 0 for o in got)
        whale.fail(200, {"result": "success", "cursor": "x", "count": 3})
        with pytest.raises(BadResponse, match="no transactions"):
            await source.fetch(request)
        whale.fail(200, {"result": "error", "message": "start: too far in the past"})
        with pytest.raises(ServiceError, match="too far"):
            await source.fetch(request)
        whale.fail(429, {"result": "error", "message": "usage limit reached"})
        with pytest.raises(RateLimited):
            await source.fetch(request)
        whale.fail(200, b'{"result": "success", "count": 1, "transactions": [')
        with pytest.raises(BadResponse, match="not JSON"):
            await source.fetch(request)
        whale.transactions.append(
            {
                "symbol": "usdt",
                "timestamp": MIDNIGHT - H,
                "amount": "lots",
                "amount_usd": 9e6,
                "to": {"owner_type": "exchange"},
                "from": {},
            }
        )
        got = await source.fetch(request)
        assert sum(o.value for o in got if o.series == "whales.inflow") == 1_000_000
    finally:
        await service.aclose()
    wrong = make_service(tmp_path, sessions, {"whale_alert": whale.url})
    wrong.environ = {"WHALE_ALERT_KEY": "WRONG-KEY-123"}
    try:
        result = await wrong.refresh("whales")
    finally:
        await wrong.aclose()
    assert "HTTP 401" in result.errors["whale_alert"] and "WRONG-KEY-123" not in result.errors["whale_alert"]


# ---- point in time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["etherscan", "whale_alert"])
async def test_flows_prefix_cut_at_t_gives_the_same_values_up_to_t(tmp_path: Path, kind: str) -> None:
    """Refreshing every 10 minutes until t, or on until later: what was known at t is the same."""
    begin = MIDNIGHT - 6 * H

    async def record(until: int, name: str) -> list:
        engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / name}")
        await upgrade_async(engine)
        fake = (
            FakeEtherscan(api_key=KEY, now_s=begin)
            if kind == "etherscan"
            else FakeWhaleAlert(api_key=WHALE_KEY, now_s=begin)
        )
        out: list = []
        with fake:
            for i in range(36):
                at = begin - 2 * H + i * 600 + 7
                if kind == "etherscan":
                    fake.add_transfer(
                        at, USER if i % 3 else BINANCE, BINANCE if i % 3 else USER, f"{(i + 1) * 1_000_000}"
                    )
                else:
                    fake.add(
                        at,
                        600_000 + i,
                        to_type="exchange" if i % 3 else "unknown",
                        from_type="unknown" if i % 3 else "exchange",
                    )
            service = make_service(
                tmp_path, session_factory(engine), {kind: fake.url}, clock_s=lambda: fake.now_s
            )
            if kind == "etherscan":
                fast(service)
            feed = "usdt" if kind == "etherscan" else "whales"
            try:
                while fake.now_s <= until:
                    out.extend((await service.refresh(feed)).observations)
                    fake.now_s += 600
            finally:
                await service.aclose()
                await engine.dispose()
        return out

    t = begin + 3 * H + 900
    cut = await record(t, "cut.db")
    full = await record(begin + 6 * H, "full.db")
    rows = lambda got: sorted((o.series, o.event_time, o.available_at, o.value) for o in got)  # noqa: E731
    assert cut and all(o.available_at <= t * NS for o in cut)
    assert rows(cut) == rows(o for o in full if o.available_at <= t * NS)
    assert any(o.value > 0 for o in cut)


async def test_whale_alert_stops_at_the_page_cap_without_half_hours(
    tmp_path: Path, sessions, whale: FakeWhaleAlert, monkeypatch
) -> None:
    from engine.feeds.sources import whale_alert

    for hours_back in (5, 4, 3, 2):
        whale.add(MIDNIGHT - hours_back * H + 10, 600_000, to_type="exchange")
    monkeypatch.setattr(whale_alert, "MAX_PAGES", 2)
    service = make_service(tmp_path, sessions, {"whale_alert": whale.url})
    service.source("whale_alert").limit = 1
    try:
        result = await service.refresh("whales")
    finally:
        await service.aclose()
    assert result.ok, result.errors
    inflow = {e // NS: v for e, _, v in await values(sessions, "whales.inflow")}
    # Two pages reached the transaction of 20:00; that hour may hold more, so it ends before it.
    assert max(inflow) == MIDNIGHT - 5 * H and inflow[MIDNIGHT - 5 * H] == 600_000
