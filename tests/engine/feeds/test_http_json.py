"""The generic http_json source against a local JSON API: items by dotted path, time units, lag, schema
drift value by value, keys per feed (query, header, placeholder), masked when the service echoes them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.config._feeds import ServiceSettings
from engine.feeds.http import BadResponse, FeedHttpClient, RateLimited, ServerError, ServiceError, Unreachable
from engine.feeds.observations import NS_PER_SECOND
from engine.feeds.sources.base import SourceSetup
from engine.feeds.sources.http_json import build
from tests.fakes.feed_services import FakeJsonApi, fetch_request, iso

NS = NS_PER_SECOND
NOW = 1_717_243_200  # 2024-06-01 00:00 UTC
H = 3600


def source(tmp_path: Path, *, key: str | None = None, http: FeedHttpClient | None = None, **options):
    options = {"retries": 0, "backoff": 0.01, "timeout_s": 1.0, **options}
    return build(SourceSetup("http_json", ServiceSettings(), key, http, str(tmp_path), options=options))


def feed(url: str, **extra) -> dict:
    return {"source": "http_json", "url": url, "time": "t", "values": {"rate": "fundingRate"}, **extra}


def values(observations, member: str = "rate") -> dict[int, float]:
    return {o.event_time // NS: o.value for o in observations if o.series.endswith(f".{member}")}


async def test_items_times_and_lag(tmp_path: Path) -> None:
    rows = [
        {"t": (NOW - k * 8 * H) * 1000, "fundingRate": 0.0001 * k, "oi": {"usd": [1.0, 2.5 + k]}}
        for k in range(5)
    ]
    with FakeJsonApi("/v1/funding", {"data": {"rows": rows}}) as api:
        spec = feed(
            api.url + "/v1/funding",
            items="data.rows",
            time_unit="ms",
            values={"rate": "fundingRate", "oi": "oi.usd.1"},
            query={"symbol": "BTCUSDT", "limit": "5"},
            lag="30m",
        )
        found = await source(tmp_path).fetch(fetch_request("funding", now_s=NOW + 10 * 60, **spec))
        assert api.requests[0].query == {"symbol": "BTCUSDT", "limit": "5"}
    # The newest row (time NOW) is known only at NOW + 30m: left for a later fetch.
    assert values(found) == {NOW - k * 8 * H: 0.0001 * k for k in range(1, 5)}
    assert values(found, "oi") == {NOW - k * 8 * H: 2.5 + k for k in range(1, 5)}
    assert all(o.available_at - o.event_time == 1800 * NS for o in found)


@pytest.mark.parametrize(
    ("stamp", "unit"),
    [
        (NOW - H, "s"),
        ((NOW - H) * 1000, "ms"),
        (iso(NOW - H), "iso"),
        (NOW - H, None),
        ((NOW - H) * 1000, None),
        (iso(NOW - H), None),
        (str(NOW - H), None),
    ],
)
async def test_time_units(tmp_path: Path, stamp, unit) -> None:
    with FakeJsonApi("/v1/x", [{"t": stamp, "fundingRate": 1.5}]) as api:
        spec = feed(api.url + "/v1/x", **({"time_unit": unit} if unit else {}))
        found = await source(tmp_path).fetch(fetch_request("f", now_s=NOW, **spec))
    assert values(found) == {NOW - H: 1.5}


async def test_schema_drift_is_handled_value_by_value(tmp_path: Path, caplog) -> None:
    rows = [
        {"t": NOW - 5 * H, "fundingRate": "0.0003", "oi": 7},
        {"t": NOW - 4 * H, "fundingRate": None, "oi": "8.5"},
        {"t": NOW - 3 * H, "oi": 9},
        {"t": NOW - 2 * H, "fundingRate": True, "oi": "n/a"},
        {"t": None, "fundingRate": 1},
        {"fundingRate": 1},
        "not an item",
        {"t": NOW - H, "fundingRate": 0.0001, "oi": {"nested": 1}},
        {"t": NOW + 3 * H, "fundingRate": 0.5},  # ahead of the fetch: not known yet
        {"t": NOW + 60, "fundingRate": 0.25},  # a minute ahead: clock skew, counts as now
    ]
    with FakeJsonApi("/v1/x", {"result": rows}) as api:
        spec = feed(api.url + "/v1/x", items="result", values={"rate": "fundingRate", "oi": "oi"})
        with caplog.at_level(logging.INFO):
            found = await source(tmp_path).fetch(fetch_request("f", now_s=NOW, **spec))
    assert values(found) == {NOW - 5 * H: 0.0003, NOW - H: 0.0001, NOW: 0.25}
    assert values(found, "oi") == {NOW - 5 * H: 7.0, NOW - 4 * H: 8.5, NOW - 3 * H: 9.0}
    assert "feed values skipped" in caplog.text


async def test_answers_of_the_wrong_shape(tmp_path: Path) -> None:
    with FakeJsonApi("/v1/x", {"error": {"code": 7, "msg": "maintenance"}}) as api:
        src = source(tmp_path)
        with pytest.raises(BadResponse, match=r"no 'data.rows' in the answer \(top-level keys: error\)"):
            await src.fetch(fetch_request("f", now_s=NOW, **feed(api.url + "/v1/x", items="data.rows")))
        api.body = {"data": {"rows": "nope"}}
        with pytest.raises(BadResponse, match="is not a list"):
            await src.fetch(fetch_request("f", now_s=NOW, **feed(api.url + "/v1/x", items="data.rows")))
        api.body = {"data": {"rows": []}}
        assert (
            await src.fetch(fetch_request("f", now_s=NOW, **feed(api.url + "/v1/x", items="data.rows"))) == []
        )
        api.body = {"t": NOW - 60, "fundingRate": "0.01"}  # one object: one item
        assert values(await src.fetch(fetch_request("f", now_s=NOW, **feed(api.url + "/v1/x")))) == {
            NOW - 60: 0.01
        }
        with pytest.raises(BadResponse, match=r"set services\.http_json\.base_url"):
            await src.fetch(fetch_request("f", now_s=NOW, **feed("/v1/x")))
        for fail, error in (
            (lambda: api.fail("/v1/x", 429, "slow down"), RateLimited),
            (lambda: api.fail("/v1/x", 503, "down"), ServerError),
            (lambda: api.slow("/v1/x", 2.5), Unreachable),
            (lambda: api.truncate("/v1/x"), Unreachable),
            (lambda: api.fail("/v1/x", 200, "<html>"), BadResponse),
        ):
            fail()
            with pytest.raises(error):
                await src.fetch(fetch_request("f", now_s=NOW, **feed(api.url + "/v1/x")))


async def test_a_relative_url_uses_the_service_base_url(tmp_path: Path) -> None:
    with FakeJsonApi("/api/v2/series", [{"t": NOW - 60, "fundingRate": 2}]) as api:
        http = FeedHttpClient("http_json", api.url + "/api", per_minute=60, retries=0)
        found = await source(tmp_path, http=http).fetch(fetch_request("f", now_s=NOW, **feed("v2/series")))
    assert values(found) == {NOW - 60: 2.0}


async def test_each_feed_sends_its_own_key_and_no_key_leaks(tmp_path: Path, monkeypatch) -> None:
    from engine.observability import setup_logging

    monkeypatch.setenv("FEED_A_KEY", "alpha-secret-111")
    monkeypatch.setenv("FEED_B_KEY", "bravo-secret-222")
    body = [{"t": NOW - 60, "fundingRate": 1}]
    with FakeJsonApi("/v1/x", body, key="alpha-secret-111", key_param="apikey") as api:
        src = source(tmp_path, key="service-secret-000")
        a = feed(api.url + "/v1/x", key="env:FEED_A_KEY", key_param="apikey")
        b = feed(api.url + "/v1/x", key="env:FEED_B_KEY", key_param="apikey")
        bearer = feed(api.url + "/v1/x", headers={"Authorization": "Bearer {key}"})
        header = feed(api.url + "/v1/x", key_header="X-API-Key")
        installed = setup_logging(tmp_path / "logs", mode="paper", console="none", level=logging.DEBUG)
        try:
            assert values(await src.fetch(fetch_request("a", now_s=NOW, **a))) == {NOW - 60: 1.0}
            # The service echoes a wrong key in its 401: the error quotes the body, masked.
            with pytest.raises(BadResponse) as refused:
                await src.fetch(fetch_request("b", now_s=NOW, **b))
            api.key = None
            await src.fetch(fetch_request("c", now_s=NOW, **bearer))
            await src.fetch(fetch_request("d", now_s=NOW, **header))
            with pytest.raises(ServiceError, match="env:FEED_Z_KEY") as missing:
                await src.fetch(
                    fetch_request(
                        "z", now_s=NOW, **feed(api.url + "/v1/x", key="env:FEED_Z_KEY", key_param="k")
                    )
                )
        finally:
            installed.flush()
            installed.close()
        first, second, third, fourth = api.requests
        await src.aclose()
    assert first.query == {"apikey": "alpha-secret-111"} and second.query == {"apikey": "bravo-secret-222"}
    assert third.headers["authorization"] == "Bearer service-secret-000"
    assert fourth.headers["x-api-key"] == "service-secret-000"
    assert "HTTP 401" in str(refused.value) and "***" in str(refused.value)
    written = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.jsonl"))
    assert "feed call" in written and "HTTP Request" in written
    for secret in ("alpha-secret-111", "bravo-secret-222", "service-secret-000"):
        assert secret not in written and secret not in str(refused.value) and secret not in str(missing.value)
