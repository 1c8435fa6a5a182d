"""Telegram Bot API channel: ``POST {base_url}/bot<token>/sendMessage``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from engine.notify._base import DeliveryError, retry_after_header
from engine.notify._render import MAX_BODY, MAX_VALUE, Rendered, to_html, to_markdown_v2, to_plain
from engine.notify.config import TelegramConfig

__all__ = ["TELEGRAM_MAX_CHARS", "TelegramChannel"]

TELEGRAM_MAX_CHARS = 4096

_FORMATS: dict[str, Callable[[Rendered], str]] = {
    "HTML": to_html,
    "MarkdownV2": to_markdown_v2,
    "plain": to_plain,
}


def fit(message: Rendered, parse_mode: str, limit: int = TELEGRAM_MAX_CHARS) -> str:
    """The formatted text, with values and body clipped (before escaping, so no escape is cut in
    half) until it fits Telegram's limit."""
    fmt = _FORMATS[parse_mode]
    max_value, max_body = MAX_VALUE, MAX_BODY
    text = fmt(message.shortened(max_value, max_body))
    while len(text) > limit and (max_value > 20 or max_body > 20):
        max_value, max_body = max(20, max_value // 2), max(20, max_body // 2)
        text = fmt(message.shortened(max_value, max_body))
    return text[:limit] if parse_mode == "plain" else text


class TelegramChannel:
    def __init__(self, config: TelegramConfig, token: str, client: httpx.AsyncClient) -> None:
        self.name = "telegram"
        self.events = frozenset(config.events)
        self.rate_limit = config.rate_limit
        self.retry = config.retry
        self._config = config
        self._url = f"{config.base_url}/bot{token}/sendMessage"
        self._client = client

    async def send(self, message: Rendered) -> None:
        try:
            await self._send(message, self._config.parse_mode)
        except DeliveryError as exc:
            # Our escaping should make this impossible; if Telegram still cannot parse the markup,
            # the plain text is better than no message.
            if self._config.parse_mode != "plain" and "can't parse entities" in str(exc):
                await self._send(message, "plain")
            else:
                raise

    async def _send(self, message: Rendered, parse_mode: str) -> None:
        payload: dict[str, Any] = {
            "chat_id": self._config.chat_id,
            "text": fit(message, parse_mode),
            "disable_web_page_preview": True,
            "disable_notification": self._config.silent,
        }
        if parse_mode != "plain":
            payload["parse_mode"] = parse_mode
        try:
            response = await self._client.post(self._url, json=payload, timeout=self._config.timeout_seconds)
        except httpx.TimeoutException:
            raise DeliveryError("Telegram did not answer in time", retryable=True) from None
        except httpx.TransportError as exc:
            # str(exc) of httpx transport errors can include the URL, hence the token: name the type only.
            raise DeliveryError(f"cannot reach Telegram ({type(exc).__name__})", retryable=True) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 200 and body.get("ok") is True:
            return
        status = response.status_code
        description = str(body.get("description") or response.reason_phrase or "no description")
        retry_after: float | None = None
        parameters = body.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            retry_after = float(parameters["retry_after"])
        elif status == 429:
            retry_after = retry_after_header(response.headers.get("retry-after"))
        raise DeliveryError(
            f"Telegram answered {status}: {description}",
            retryable=status == 429 or status >= 500,
            retry_after=retry_after,
        )
