"""Building ccxt async clients for market data, and reading what a rate-limited server asks for."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from dsl.errors import did_you_mean
from engine.data.errors import DataError, issue

__all__ = ["create_exchange", "retry_after_seconds"]


def create_exchange(
    exchange_id: str,
    *,
    futures: bool = False,
    config: Mapping[str, Any] | None = None,
    api_url: str | None = None,
) -> Any:
    """A ccxt async exchange configured for public market data (the caller must ``await ex.close()``).

    ``api_url`` (scheme://host:port) replaces the host of every ``urls['api']`` entry, keeping the paths:
    a proxy, a mirror, or the fake server in tests.
    """
    import ccxt.async_support as ccxt_async

    if exchange_id not in ccxt_async.exchanges:
        raise DataError(
            [
                issue(
                    "DATA017",
                    f"unknown exchange '{exchange_id}'{did_you_mean(exchange_id, ccxt_async.exchanges)}",
                    "<cli>",
                )
            ]
        )
    settings: dict[str, Any] = {"enableRateLimit": True}
    if exchange_id.startswith("binance"):
        # Markets of the needed types only, and no currency/margin calls (they need keys or more requests).
        types = ["spot", "linear"] if futures else ["spot"]
        settings["options"] = {
            "fetchMarkets": {"types": types},
            "fetchCurrencies": False,
            "fetchMargins": False,
        }
    for key, value in (config or {}).items():
        if key == "options" and isinstance(value, Mapping):
            settings["options"] = {**settings.get("options", {}), **value}
        else:
            settings[key] = value
    exchange = getattr(ccxt_async, exchange_id)(settings)
    if api_url:
        exchange.urls["api"] = _rebase(exchange.urls["api"], api_url)
    return exchange


def _rebase(urls: Any, base: str) -> Any:
    if isinstance(urls, str):
        target, original = urlsplit(base), urlsplit(urls)
        return urlunsplit((target.scheme, target.netloc, original.path, original.query, ""))
    if isinstance(urls, Mapping):
        return {key: _rebase(value, base) for key, value in urls.items()}
    return urls


def retry_after_seconds(exchange: Any) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - pd.Timestamp.now(tz="UTC").to_pydatetime()).total_seconds()) if when else None
