"""The exchange layer: the :class:`~engine.exchanges.base.Exchange` protocol, the paper exchange, ccxt
exchanges for testnet and live trading, and the order safety pipeline (``engine.exchanges.orders``).

    exchange = make_exchange(bot_model, session_factory=factory)   # paper unless the bot says otherwise
    await exchange.start()

Importing this package does not import ccxt (a second of start-up): :func:`make_exchange` does, and only
for testnet/live bots. See docs/exchanges.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.exchanges.base import (
    AuthenticationFailed,
    Balance,
    Exchange,
    ExchangeError,
    ExchangeOrder,
    ExchangeTrade,
    InsufficientFunds,
    InvalidOrder,
    MarketInfo,
    OperationalExchangeError,
    OrderNotFound,
    OrderRequest,
    RateLimited,
    TemporaryExchangeError,
    WrongEnvironment,
)
from engine.exchanges.paper import PaperExchange

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = [
    "AuthenticationFailed",
    "Balance",
    "Exchange",
    "ExchangeError",
    "ExchangeOrder",
    "ExchangeTrade",
    "InsufficientFunds",
    "InvalidOrder",
    "MarketInfo",
    "OperationalExchangeError",
    "OrderNotFound",
    "OrderRequest",
    "PaperExchange",
    "RateLimited",
    "TemporaryExchangeError",
    "WrongEnvironment",
    "make_exchange",
    "paper_account",
]


def paper_account(bot_model: Any) -> str:
    """The key of a bot's paper balances in the store: one paper account per exchange and bot."""
    return f"{bot_model.exchange.name}:paper:{bot_model.bot}"


def make_exchange(
    bot_model: Any,
    *,
    session_factory: async_sessionmaker[AsyncSession] | None,
    api_urls: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    key_store: Mapping[str, str] | None = None,
) -> Exchange:
    """The exchange a bot (an ``engine.config`` Bot model) trades on. ``paper`` (and ``backtest``) give a
    :class:`PaperExchange` funded with the bot's capital and charging its fees and slippage; ``testnet`` and
    ``live`` give a ccxt exchange whose credentials are resolved now, at run time, from ``env:`` variables or
    ``store:`` names of ``key_store`` (decrypted by :func:`engine.exchanges.keystore.load_key_store`); a
    missing one is a ``DiagnosticError`` naming it, never showing a value. A futures bot's exchange sets
    its pairs' margin mode and leverage when it starts."""
    config = bot_model.exchange
    if config.mode in ("paper", "backtest"):
        currency = bot_model.capital.currency or bot_model.pairs[0].split("/")[1].split(":")[0]
        return PaperExchange(
            paper_account(bot_model),
            fees=str(bot_model.fees.taker),
            maker_fees=str(bot_model.fees.maker),
            slippage=str(bot_model.slippage),
            balances={currency: str(bot_model.capital.initial)},
            session_factory=session_factory,
            name=config.name,
        )
    from engine.config import resolve_secret

    if config.credentials is None:
        raise WrongEnvironment(
            f"bot {bot_model.bot}: {config.mode} mode needs exchange.credentials (env: references)"
        )
    creds = config.credentials
    api_key = resolve_secret(creds.key, environ=environ, store=key_store, what="the API key")
    secret = resolve_secret(creds.secret, environ=environ, store=key_store, what="the API secret")
    password = (
        resolve_secret(creds.password, environ=environ, store=key_store, what="the API passphrase")
        if creds.password
        else None
    )
    from engine.exchanges.ccxt_exchange import CcxtExchange

    return CcxtExchange(
        config.name,
        config.mode,
        config.market,
        api_key=api_key,
        secret=secret,
        password=password,
        api_urls=api_urls,
        options=options,
        **(
            {
                "symbols": tuple(bot_model.pairs),
                "leverage": config.leverage,
                "margin_mode": config.margin_mode,
            }
            if config.market == "futures"
            else {}
        ),
    )
