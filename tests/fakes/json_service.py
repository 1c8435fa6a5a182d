"""A tiny HTTP service on 127.0.0.1 for data-source tests: routes return (status, headers, body), every
request is logged with its time, and faults can be queued per path.

    with JsonService({"/fng/": lambda q: (200, {}, {"data": [...]})}) as service:
        client = FeedHttpClient("fear_greed", service.url, per_minute=60)
        service.fail("/fng/", 429, headers={"Retry-After": "1"})      # the next call gets a 429
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["JsonService", "Logged"]

Handler = Callable[[dict[str, str]], tuple[int, dict[str, str], Any]]


@dataclass(frozen=True, slots=True)
class Logged:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    time: float


@dataclass
class JsonService:
    routes: dict[str, Handler]
    requests: list[Logged] = field(default_factory=list)
    faults: dict[str, list[tuple[int, dict[str, str], Any]]] = field(default_factory=dict)
    delay: float = 0.0

    def __enter__(self) -> JsonService:
        service = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                service.requests.append(Logged(parts.path, query, dict(self.headers), time.monotonic()))
                if service.delay:
                    time.sleep(service.delay)
                queued = service.faults.get(parts.path)
                if queued:
                    status, headers, body = queued.pop(0)
                elif parts.path in service.routes:
                    status, headers, body = service.routes[parts.path](query)
                else:
                    status, headers, body = 404, {}, {"error": "not found"}
                data = (
                    body
                    if isinstance(body, bytes)
                    else (body if isinstance(body, str) else json.dumps(body)).encode()
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, path: str, status: int, body: Any = "", headers: dict[str, str] | None = None) -> None:
        self.faults.setdefault(path, []).append((status, headers or {}, body))
