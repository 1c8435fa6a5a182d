"""HTTP clients for sources whose feeds each name their own URL (http_json, calendars by URL): one
client, and so one rate limiter, per host."""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.feeds.http import BadResponse, FeedHttpClient
from engine.feeds.sources.base import SourceSetup

__all__ = ["OriginClients"]


class OriginClients:
    def __init__(self, setup: SourceSetup, per_minute: float):
        self.setup = setup
        self.per_minute = float(setup.service.calls_per_minute or per_minute)
        self._clients: dict[str, FeedHttpClient] = {}

    def client_for(self, url: str) -> tuple[FeedHttpClient, str]:
        """The client of the URL's host, and the URL to ask it. A relative URL goes to the service's
        ``base_url`` (the FeedService's client for this kind)."""
        shared = self.setup.http
        if not url.startswith(("http://", "https://")):
            if shared is None:
                raise BadResponse(
                    self.setup.kind, f"'{url}' is relative: set services.{self.setup.kind}.base_url"
                )
            return shared, url
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if shared is not None and shared.base_url.startswith(origin):
            return shared, url
        if origin not in self._clients:
            options = self.setup.options
            timeout = self.setup.service.timeout
            self._clients[origin] = FeedHttpClient(
                self.setup.kind,
                origin,
                per_minute=self.per_minute,
                timeout=float(options.get("timeout_s", _seconds(timeout) or 20.0)),  # type: ignore[arg-type]
                retries=int(options.get("retries", 3)),  # type: ignore[call-overload]
                backoff=float(options.get("backoff", 1.0)),  # type: ignore[arg-type]
                secrets=(self.setup.key or "",),
            )
        return self._clients[origin], url

    def take_calls(self) -> int:
        """Calls made through these clients since the last time this was asked (for health rows)."""
        total = 0
        for client in self._clients.values():
            total, client.calls = total + client.calls, 0
        return total

    def busiest(self) -> tuple[int, float] | None:
        """(calls in the last minute, limit per minute) of the busiest host, None before any call."""
        if not self._clients:
            return None
        limiter = max((c.limiter for c in self._clients.values()), key=lambda limiter: limiter.used)
        return (limiter.used, limiter.per_minute)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _seconds(duration: str | None) -> float:
    from dsl.timeframes import parse_duration

    return float(parse_duration(duration)) if duration else 0.0
