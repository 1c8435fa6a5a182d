"""The fake Binance server answers like Binance (checked over plain HTTP, without ccxt)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest

from tests.fakes.binance_market import FakeMarket, walk_candles
from tests.fakes.binance_server import FakeBinance, Response

START = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)
MIN = 60_000


@pytest.fixture(scope="module")
def server():
    candles = walk_candles("2024-01-01", "2024-01-02")
    markets = [FakeMarket.spot("ETH/BTC", candles), FakeMarket.futures("XRP/USDT:USDT", candles)]
    with FakeBinance(markets, now_ms=START + 600 * MIN + 30_000) as running:  # 10:00:30
        yield running


def get(server, path, headers=None):
    request = urllib.request.Request(server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = body.decode()
        return error.code, payload, dict(error.headers)


def opens(rows):
    return [(row[0] - START) // MIN for row in rows]


def test_general_endpoints(server):
    assert get(server, "/api/v3/ping")[:2] == (200, {})
    assert get(server, "/api/v3/time")[1] == {"serverTime": START + 600 * MIN + 30_000}
    status, info, headers = get(server, "/api/v3/exchangeInfo")
    assert status == 200
    [symbol] = info["symbols"]
    assert symbol["symbol"] == "ETHBTC" and symbol["baseAsset"] == "ETH" and symbol["quoteAsset"] == "BTC"
    assert {f["filterType"] for f in symbol["filters"]} == {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
    assert "x-mbx-used-weight-1m" in {k.lower() for k in headers}
    futures = get(server, "/fapi/v1/exchangeInfo")[1]["symbols"]
    assert futures[0]["symbol"] == "XRPUSDT" and futures[0]["contractType"] == "PERPETUAL"
    assert get(server, "/api/v3/exchangeInfo?symbol=LTCBTC")[1]["code"] == -1121
    assert get(server, "/api/v3/nothing")[0] == 404


def test_klines_selection_follows_binance(server):
    base = "/api/v3/klines?symbol=ETHBTC&interval=1m"
    # No times: the most recent `limit`, including the still-open candle at 10:00.
    assert opens(get(server, base + "&limit=3")[1]) == [598, 599, 600]
    assert len(get(server, base)[1]) == 500  # default limit
    # startTime only: the first `limit` opening at or after it.
    assert opens(get(server, f"{base}&startTime={START + 5 * MIN + 1}&limit=2")[1]) == [6, 7]
    # endTime only: the last `limit` opening at or before it.
    assert opens(get(server, f"{base}&endTime={START + 5 * MIN}&limit=2")[1]) == [4, 5]
    # Both: inside [start, end], from the start.
    assert opens(get(server, f"{base}&startTime={START}&endTime={START + 2 * MIN}&limit=10")[1]) == [0, 1, 2]
    # Nothing after the server's clock.
    assert get(server, f"{base}&startTime={START + 700 * MIN}")[1] == []
    row = get(server, f"{base}&startTime={START}&limit=1")[1][0]
    assert len(row) == 12 and isinstance(row[1], str) and row[6] == START + MIN - 1


def test_higher_intervals_are_aggregated_and_the_open_one_is_partial(server):
    rows = get(server, f"/api/v3/klines?symbol=ETHBTC&interval=1h&startTime={START}")[1]
    assert len(rows) == 11  # 00:00 .. 10:00, the last still open
    candles = walk_candles("2024-01-01", "2024-01-02")
    first = candles.iloc[:60]
    assert float(rows[0][1]) == pytest.approx(first["open"].iloc[0])
    assert float(rows[0][2]) == pytest.approx(first["high"].max())
    assert float(rows[0][5]) == pytest.approx(first["volume"].sum())
    assert float(rows[-1][5]) == pytest.approx(candles["volume"].iloc[600])  # one minute into the hour


def test_klines_errors(server):
    assert get(server, "/api/v3/klines?interval=1m")[1]["code"] == -1102
    assert get(server, "/api/v3/klines?symbol=FOOBAR&interval=1m")[1] == {
        "code": -1121,
        "msg": "Invalid symbol.",
    }
    assert get(server, "/api/v3/klines?symbol=ETHBTC&interval=7m")[1]["code"] == -1120
    assert get(server, "/api/v3/klines?symbol=ETHBTC&interval=1m&limit=1001")[1]["code"] == -1130
    assert len(get(server, "/fapi/v1/klines?symbol=XRPUSDT&interval=1m&limit=1500&startTime=0")[1]) == 601
    status, body, _ = get(
        server, f"/api/v3/klines?symbol=ETHBTC&interval=1m&startTime={START + 1}&endTime={START}"
    )
    assert (status, body["code"]) == (400, -1023)
    assert get(server, "/api/v3/klines?symbol=XRPUSDT&interval=1m")[1]["code"] == -1121  # futures only


def test_faults(server):
    server.faults.add("/api/v3/time", status=429, retry_after=3)
    status, body, headers = get(server, "/api/v3/time")
    assert status == 429 and body["code"] == -1003 and headers["Retry-After"] == "3"
    server.faults.add("/api/v3/time", status=503, after=1)
    assert get(server, "/api/v3/time")[0] == 200
    assert get(server, "/api/v3/time")[0] == 503
    assert get(server, "/api/v3/time")[0] == 200
    server.faults.add("/api/v3/time", delay=0.3)
    began = time.perf_counter()
    assert get(server, "/api/v3/time")[0] == 200
    assert time.perf_counter() - began >= 0.3
    server.faults.add("/api/v3/time", drop=True)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        get(server, "/api/v3/time")
    assert server.faults.pending() == 0
    assert server.calls("/api/v3/time")[-1].status == 0


def test_signed_routes_check_key_timestamp_and_signature(server):
    server.api_keys["key1"] = "secret1"
    server.router.add("GET", "/api/v3/account", lambda request: {"ok": True}, security="SIGNED")
    server.router.add(
        "GET", "/api/v3/userDataStream", lambda request: Response(200, {"key": 1}), security="API_KEY"
    )

    def signed(query: str, secret: str = "secret1") -> str:
        signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return f"/api/v3/account?{query}&signature={signature}"

    now = server.clock()
    headers = {"X-MBX-APIKEY": "key1"}
    assert get(server, signed(f"timestamp={now}&recvWindow=5000"), headers)[1] == {"ok": True}
    assert get(server, signed(f"timestamp={now}"))[1]["code"] == -2014  # no key
    assert get(server, signed(f"timestamp={now}", "wrong"), headers)[1]["code"] == -1022
    assert get(server, signed(f"timestamp={now - 60_000}"), headers)[1]["code"] == -1021
    assert get(server, f"/api/v3/account?timestamp={now}", headers)[1]["code"] == -1102
    assert get(server, "/api/v3/userDataStream", headers)[1] == {"key": 1}
