"""A local OpenAI-compatible server (POST /v1/chat/completions) for the real ``openai`` client.

``mode`` picks the answer: ``ok`` (a valid structured answer derived from the article), ``malformed``
(content that is not JSON), ``schema`` (JSON that violates the schema), ``slow`` (sleeps ``delay``),
``429`` and ``500``. ``obey`` makes it follow instructions found in the article: an article containing
"+1" gets sentiment 1.0 with confidence 1.0, as a model fooled by an injection would answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeOpenAI:
    mode: str = "ok"
    obey: bool = False
    delay: float = 1.0
    sentiment: float = 0.4
    confidence: float = 0.9
    event_type: str = "none"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.mode == "429":
            return 429, {
                "error": {
                    "message": "Rate limit reached for requests",
                    "type": "requests",
                    "code": "rate_limit_exceeded",
                }
            }
        if self.mode == "500":
            return 500, {"error": {"message": "The server had an error", "type": "server_error"}}
        if self.mode == "slow":
            time.sleep(self.delay)
        article = body["messages"][-1]["content"]
        if self.mode == "malformed":
            content = '{"sentiment": 0.5, "confidence": '
        elif self.mode == "schema":
            content = json.dumps(
                {"sentiment": 7, "confidence": 0.9, "event_type": "moonshot", "coins": [], "reason": "x"}
            )
        else:
            sentiment, confidence = self.sentiment, self.confidence
            if self.obey and "+1" in article:
                sentiment, confidence = 1.0, 1.0
            coins = re.findall(r'"tagged_coins": \[([^\]]*)\]', article)
            content = json.dumps(
                {
                    "sentiment": sentiment,
                    "confidence": confidence,
                    "event_type": self.event_type,
                    "coins": [c.strip(' "') for c in coins[0].split(",") if c.strip()] if coins else [],
                    "reason": "local fake model",
                }
            )
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 30, "total_tokens": prompt + 30},
        }

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    status, payload = 404, {"error": {"message": "not found"}}
                else:
                    status, payload = fake.answer(body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"
