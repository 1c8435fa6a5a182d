"""The fake's futures settings endpoints and 24-hour ticker answer like Binance over plain HTTP (signatures
checked), without ccxt."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from tests.fakes.binance_futures import FakeFutures
from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance

KEY, SECRET = "fkey", "fsecret"


@pytest.fixture
def fake():
    candles = walk_candles("2024-01-01", "2024-01-02", start_price=0.5)
    with FakeBinance([FakeMarket.futures("XRP/USDT:USDT", candles)]) as server:
        yield server, FakeFutures.install(server, KEY, SECRET, {"USDT": "10"}, max_leverage={"XRPUSDT": 50})


def call(server, method: str, path: str, params: dict, *, sign: bool = True, secret: str = SECRET):
    query = urlencode({**params, "timestamp": int(time.time() * 1000)})
    if sign:
        query += "&signature=" + hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{server.url}{path}?{query}", method=method, headers={"X-MBX-APIKEY": KEY}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_margin_type_and_leverage_are_signed_recorded_and_checked(fake) -> None:  # type: ignore[no-untyped-def]
    server, account = fake
    margin = {"symbol": "XRPUSDT", "marginType": "ISOLATED"}
    assert call(server, "POST", "/fapi/v1/marginType", margin, sign=False)[1]["code"] == -1102
    assert call(server, "POST", "/fapi/v1/marginType", margin, secret="wrong")[1]["code"] == -1022
    assert account.changes == []
    assert call(server, "POST", "/fapi/v1/marginType", margin) == (200, {"code": 200, "msg": "success"})
    assert call(server, "POST", "/fapi/v1/marginType", margin)[1]["code"] == -4046
    account.positions.add("XRPUSDT")
    crossed = {**margin, "marginType": "CROSSED"}
    assert call(server, "POST", "/fapi/v1/marginType", crossed)[1]["code"] == -4048
    status, answer = call(server, "POST", "/fapi/v1/leverage", {"symbol": "XRPUSDT", "leverage": 7})
    assert status == 200 and answer["leverage"] == 7
    status, answer = call(server, "POST", "/fapi/v1/leverage", {"symbol": "XRPUSDT", "leverage": 51})
    assert status == 400 and answer == {"code": -4028, "msg": "Leverage 51 is not valid"}
    assert call(server, "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 2})[1]["code"] == -1121
    assert account.changes == [("XRPUSDT", "marginType", "ISOLATED"), ("XRPUSDT", "leverage", 7)]
    status, wallet = call(server, "GET", "/fapi/v3/account", {})
    assert status == 200 and wallet["assets"][0]["availableBalance"] == "10.00000000"


def test_the_ticker_gives_the_last_visible_close(fake) -> None:  # type: ignore[no-untyped-def]
    server, _ = fake
    server.now_ms = int(walk_candles("2024-01-01", "2024-01-02").index[99].value // 1_000_000)
    status, ticker = call(server, "GET", "/fapi/v1/ticker/24hr", {"symbol": "XRPUSDT"}, sign=False)
    candles = server.market_data.markets[("XRPUSDT", True)].candles
    assert status == 200 and float(ticker["lastPrice"]) == pytest.approx(candles["close"].iloc[99])
    assert float(ticker["openPrice"]) == pytest.approx(candles["open"].iloc[0])
    assert call(server, "GET", "/fapi/v1/ticker/24hr", {"symbol": "NOPE"}, sign=False)[1]["code"] == -1121
