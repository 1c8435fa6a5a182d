"""Generic webhook channel: a signed JSON POST per message.

Body: ``{"id", "event", "ts", "mode", "bot", "title", "text", "note", "data"}`` where ``text`` is the
plain-text message (so chat services that read a ``text`` field show it as is) and ``data`` the
event's fields. With a secret, ``X-Engine-Signature: sha256=<hex>`` is the HMAC-SHA256 of
``"<X-Engine-Timestamp>.<raw body>"``: receivers recompute it and reject old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from engine.notify._base import DeliveryError, retry_after_header
from engine.notify._render import Rendered, to_plain
from engine.notify.config import WebhookConfig

__all__ = ["WebhookChannel", "sign", "webhook_body"]

USER_AGENT = "yaml-trading-engine-notify/1"


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def webhook_body(message: Rendered) -> bytes:
    payload = {
        "id": message.id,
        "event": message.kind,
        "ts": message.created.isoformat(),
        "mode": message.mode,
        "bot": message.bot,
        "title": message.title,
        "text": to_plain(message),
        "note": message.note,
        "data": message.data,
    }
    return json.dumps(payload, ensure_ascii=False, default=_json_default, separators=(",", ":")).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel:
    def __init__(
        self,
        config: WebhookConfig,
        *,
        index: int,
        url: str,
        secret: str | None,
        headers: Mapping[str, str],
        client: httpx.AsyncClient,
    ) -> None:
        self.name = f"webhook:{config.name or index}"
        self.events = frozenset(config.events)
        self.rate_limit = config.rate_limit
        self.retry = config.retry
        self._config = config
        self._url = url
        self._secret = secret
        self._headers = dict(headers)
        self._client = client

    async def send(self, message: Rendered) -> None:
        body = webhook_body(message)
        timestamp = str(int(time.time()))
        headers: dict[str, Any] = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Engine-Event": message.kind,
            "X-Engine-Delivery": message.id,
            "X-Engine-Timestamp": timestamp,
            **self._headers,
        }
        if self._secret is not None:
            headers["X-Engine-Signature"] = sign(self._secret, timestamp, body)
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=self._config.timeout_seconds
            )
        except httpx.TimeoutException:
            raise DeliveryError(f"{self.name} did not answer in time", retryable=True) from None
        except httpx.TransportError as exc:
            # The URL may itself be a secret (chat-service webhook URLs are), so it is never quoted.
            raise DeliveryError(f"cannot reach {self.name} ({type(exc).__name__})", retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        raise DeliveryError(
            f"{self.name} answered {status} {response.reason_phrase}".rstrip(),
            retryable=status in (408, 425, 429) or status >= 500,
            retry_after=retry_after_header(response.headers.get("retry-after")),
        )
