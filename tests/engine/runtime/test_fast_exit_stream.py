"""The trade follower of fast exits (engine.runtime.trade_stream.TradeFollower) on a scripted ccxt-like
client: REST pages and repeated answers deliver each trade once, oldest first; a websocket client gets
the trades since the cursor over REST first, then its stream; a stream error falls back to REST for
what was missed and subscribes again. (The REST path against the fake Binance and a real ccxt client
is in test_fast_exit.py.)"""

from __future__ import annotations

import asyncio

import pytest

from engine.runtime.trade_stream import TradeFollower

PAIR = "ETH/BTC"


def _row(ms: int, price: float, tid: str, side: str = "sell") -> dict:
    return {"timestamp": ms, "side": side, "amount": 1.0, "price": price, "id": tid}


class _Client:
    """Answers ``fetch_trades`` with the scripted rows at or after ``since`` (like an exchange) and
    ``watch_trades`` with the scripted stream answers, an Exception instance being raised."""

    id = "binance"

    def __init__(self, rows: list[dict], stream: list | None = None) -> None:
        self.rows = rows
        self.stream = list(stream or [])
        self.has = {"watchTrades": stream is not None}
        self.calls: list[tuple] = []
        self.published_meanwhile: list[dict] = []

    async def fetch_trades(self, pair, since, limit, params):
        self.calls.append(("fetch", since, dict(params)))
        return [r for r in self.rows if r["timestamp"] >= since][:limit]

    async def watch_trades(self, pair):
        self.calls.append(("watch",))
        if not self.stream:
            await asyncio.sleep(3600)
        answer = self.stream.pop(0)
        if isinstance(answer, Exception):
            self.rows.extend(self.published_meanwhile)  # what the exchange publishes while we are away
            raise answer
        return answer


def _follower(client, delivered: list, cursor: int = 1_000) -> TradeFollower:
    async def deliver(trades, now_ms):
        delivered.append([t.id for t in trades])

    async def no_wait(seconds):
        await asyncio.sleep(0)

    return TradeFollower(client, PAIR, deliver, lambda: 5_000.0, sleep=no_wait, cursor=cursor)


async def test_repeated_rest_answers_deliver_each_trade_once_oldest_first():
    rows = [_row(900, 1.0, "old"), _row(2_000, 1.0, "b"), _row(1_500, 1.0, "a"), _row(2_000, 1.0, "c")]
    client = _Client(rows)
    delivered: list = []
    follower = _follower(client, delivered)
    await follower.fetch()
    client.rows.append(_row(2_000, 1.0, "d"))  # one more in the cursor's millisecond
    await follower.fetch()
    await follower.fetch()
    assert delivered == [["a", "b", "c"], ["d"], []]
    # Each request names its end (Binance refuses a window of an hour or more).
    assert all(call[2] == {"until": 5_000} for call in client.calls)


async def test_a_stream_starts_after_a_rest_catch_up_and_falls_back_to_rest_on_an_error(caplog):
    rows = [_row(1_200, 1.0, "rest1")]
    stream = [
        [_row(1_200, 1.0, "rest1"), _row(1_300, 1.0, "ws1")],
        ConnectionError("gone"),
        [_row(1_500, 1.0, "ws2")],
    ]
    client = _Client(rows, stream)
    delivered: list = []
    follower = _follower(client, delivered)
    client.published_meanwhile = [_row(1_400, 1.0, "missed")]
    task = asyncio.create_task(follower.run())
    for _ in range(500):
        await asyncio.sleep(0)
        if follower.received >= 4:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # After the error, what the exchange published meanwhile comes over REST first.
    flat = [tid for batch in delivered for tid in batch]
    assert flat == ["rest1", "ws1", "missed", "ws2"]
    kinds = [c[0] for c in client.calls]
    assert kinds[:3] == ["fetch", "watch", "watch"] and kinds[3] == "fetch"
    assert "trade stream: ConnectionError: gone" in caplog.text
