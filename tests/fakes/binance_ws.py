"""A fake Binance spot market-stream websocket for tests, spoken to by the real ``ccxt.pro`` client.

    async with FakeBinanceStream(rest) as stream:            # rest: a running FakeBinance
        client = ccxt.pro.binance(stream.ccxt_config())       # REST on ``rest``, websocket here
        await client.watch_ohlcv("ETH/BTC", "1m")

It serves what ccxt.pro's binance expects of ``wss://stream.binance.com:9443/ws``: a connection to
``<base>/stream/ws/<n>`` (ccxt appends a stream index; the path must contain ``/stream`` for ccxt to
read the symbols as spot ones), a ``{"method": "SUBSCRIBE", "params": ["ethbtc@kline_1m"], "id": N}``
request answered with ``{"result": null, "id": N}``, then ``kline`` events (``e, E, s`` and ``k`` with
``t, T, s, i, o, c, h, l, v, x, ...``) for the subscribed streams.

The candles and the clock are the REST fake's (``FakeBinance.market_data`` and ``FakeBinance.clock``):
every ``tick`` seconds each connection looks at the clock, and when a candle has closed since it last
pushed, it sends the final values (``x: true``) of every candle closed since, then the candle now
forming (``x: false``) with values of its own (close = open, half the volume) so that a forming
candle taken for a closed one shows. A new connection starts with the forming candle, as Binance's
does: what closed while a client was away comes only from REST. :meth:`drop` closes every connection
from the server's side; :meth:`silence` stops pushing without closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import WSMsgType, web

from tests.fakes.binance_market import INTERVALS_MS

if TYPE_CHECKING:
    from tests.fakes.binance_server import FakeBinance

__all__ = ["FakeBinanceStream"]


@dataclass
class _Connection:
    socket: web.WebSocketResponse
    # stream name -> (open ms, final) of the candle pushed last
    streams: dict[str, tuple[int, bool] | None] = field(default_factory=dict)


class FakeBinanceStream:
    """The websocket server, on 127.0.0.1 in the running event loop. ``async with`` or start/stop."""

    def __init__(self, rest: FakeBinance, *, tick: float = 0.005) -> None:
        self.rest = rest
        self.tick = tick
        self.connections: list[_Connection] = []
        self.subscriptions: list[list[str]] = []  # every SUBSCRIBE's params, in order
        self.connects = 0
        self.muted = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self) -> FakeBinanceStream:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        await self.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinanceStream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        assert self._port is not None, "server not started"
        return f"ws://127.0.0.1:{self._port}"

    def ccxt_urls(self) -> dict[str, str]:
        """``urls['api']['ws']`` entries of ccxt.pro's binance pointing at this server."""
        return {"spot": f"{self.url}/stream/ws", "margin": f"{self.url}/stream/ws"}

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """The REST fake's ccxt config with the websocket URLs of this server added."""
        import ccxt.pro as ccxt_pro

        config = self.rest.ccxt_config(**extra)
        ws = dict(ccxt_pro.binance().describe()["urls"]["api"]["ws"])
        ws.update(self.ccxt_urls())
        config["urls"]["api"] = {**config["urls"]["api"], "ws": ws}
        return config

    async def drop(self) -> None:
        """Close every connection from the server's side (code 1001, going away)."""
        connections, self.connections = self.connections, []
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.socket.close(code=1001, message=b"going away")

    def silence(self, muted: bool = True) -> None:
        """Keep the connections open but push nothing (or push again)."""
        self.muted = muted

    # ---- serving ------------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if "/stream/ws" not in request.path:
            return web.Response(status=404, text="fake Binance stream: no such path")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        connection = _Connection(socket)
        self.connections.append(connection)
        self.connects += 1
        pusher = asyncio.create_task(self._push(connection))
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._answer(connection, json.loads(message.data))
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
            if connection in self.connections:
                self.connections.remove(connection)
        return socket

    async def _answer(self, connection: _Connection, request: dict[str, Any]) -> None:
        method, params = request.get("method"), request.get("params") or []
        if method == "SUBSCRIBE":
            for name in params:
                interval = name.partition("@kline_")[2]
                if not interval or interval not in INTERVALS_MS:
                    await connection.socket.send_json(
                        {
                            "error": {"code": 2, "msg": f"Invalid request: unknown stream {name}"},
                            "id": request.get("id"),
                        }
                    )
                    return
                connection.streams.setdefault(name, None)
            self.subscriptions.append(list(params))
            await connection.socket.send_json({"result": None, "id": request.get("id")})
        elif method == "UNSUBSCRIBE":
            for name in params:
                connection.streams.pop(name, None)
            await connection.socket.send_json({"result": None, "id": request.get("id")})

    async def _push(self, connection: _Connection) -> None:
        while not connection.socket.closed:
            if not self.muted:
                for name in list(connection.streams):
                    await self._push_stream(connection, name)
            await asyncio.sleep(self.tick)

    async def _push_stream(self, connection: _Connection, name: str) -> None:
        market, _, interval = name.partition("@kline_")
        key = (market.upper(), False)
        if key not in self.rest.market_data.markets:
            return
        opens, values = self.rest.market_data._series(key, interval)
        step = INTERVALS_MS[interval]
        now = self.rest.clock()
        forming = len(opens) - 1 if len(opens) and opens[-1] + step > now else None
        last = connection.streams[name]
        if last is None:
            todo = [] if forming is None else [forming]  # a new subscription starts with the forming candle
        else:
            last_open, last_final = last
            first = int(np.searchsorted(opens, last_open, side="left"))
            todo = [
                i
                for i in range(first, len(opens))
                if not (opens[i] == last_open and (last_final or i == forming))
            ]
        for index in todo:
            final = index != forming
            await self._send_kline(
                connection, market.upper(), interval, int(opens[index]), values[index], step, final, now
            )
            connection.streams[name] = (int(opens[index]), final)

    async def _send_kline(
        self,
        connection: _Connection,
        symbol: str,
        interval: str,
        open_ms: int,
        row: np.ndarray,
        step: int,
        closed: bool,
        now: int,
    ) -> None:
        o, h, low, c, v = (float(x) for x in row)
        if not closed:
            c, v = o, v / 2  # a forming candle: not its final values
            h, low = max(o, h), min(o, low)
        kline = {
            "t": open_ms,
            "T": open_ms + step - 1,
            "s": symbol,
            "i": interval,
            "f": 0,
            "L": 0,
            "o": f"{o:.8f}",
            "c": f"{c:.8f}",
            "h": f"{h:.8f}",
            "l": f"{low:.8f}",
            "v": f"{v:.8f}",
            "n": max(1, int(v)),
            "x": closed,
            "q": f"{v * (o + c) / 2:.8f}",
            "V": f"{v / 2:.8f}",
            "Q": f"{v * (o + c) / 4:.8f}",
            "B": "0",
        }
        with contextlib.suppress(ConnectionError, RuntimeError):
            await connection.socket.send_json({"e": "kline", "E": now, "s": symbol, "k": kline})
