"""The bot document (``bots/*.yaml``): which strategy runs where, with what money and which limits."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model, model_validator
from pydantic.fields import FieldInfo

from engine.config._strategy import Trailing
from engine.config._types import (
    Bool,
    ConfigModel,
    Currency,
    Duration,
    ExchangeName,
    Identifier,
    Int,
    Money,
    Name,
    Number,
    Pair,
    ParamValue,
    SecretRef,
    ratio,
    split_money,
)

# The channel models are imported by name too: the generated key reference (docs/config.md) looks up
# every nested model of a bot file in this module.
from engine.notify.config import (  # noqa: F401
    EmailConfig,
    NotificationsConfig,
    RateLimit,
    RetryPolicy,
    TelegramConfig,
    WebhookConfig,
)

__all__ = [
    "Bot",
    "BotOverlay",
    "Capital",
    "Credentials",
    "Exchange",
    "Fees",
    "LowProfitPairs",
    "MaxDrawdown",
    "ProfitLock",
    "Protections",
    "Risk",
    "StoplossGuard",
]

Mode = Literal["backtest", "paper", "testnet", "live"]
Market = Literal["spot", "futures"]

_Fraction = ratio(0.0, 1.0)  # (0%, 100%]
_Share = ratio(0.0, 1.0, low_inclusive=True)  # [0%, 100%]
_StopRatio = ratio(0.0, 1.0, high_inclusive=False)  # (0%, 100%)
_Target = ratio(0.0, 100.0)  # (0%, 10000%]
_Fee = ratio(0.0, 0.1, low_inclusive=True, high_inclusive=False)
_Slippage = ratio(0.0, 0.5, low_inclusive=True, high_inclusive=False)
_Gain = ratio(0.0, 100.0)
_Keep = ratio(0.0, 100.0, low_inclusive=True)
_Profit = ratio(-1.0, 100.0, low_inclusive=True)


class Credentials(ConfigModel):
    """API credentials, always as references, never literal keys: env:NAME (an environment variable) or
    store:NAME (a key saved encrypted in the engine's key store, from the web app's Users & keys page)."""

    key: SecretRef = Field(description="API key: env:VARIABLE_NAME or store:NAME.")
    secret: SecretRef = Field(description="API secret: env:VARIABLE_NAME or store:NAME.")
    password: SecretRef | None = Field(
        None, description="API passphrase, for exchanges that use one: env:VARIABLE_NAME or store:NAME."
    )


class Exchange(ConfigModel):
    """Where the bot trades and how."""

    name: ExchangeName = Field(description="Exchange id as ccxt names it, e.g. binance.")
    mode: Mode = Field(
        "paper",
        description="backtest: historical candles; paper: live prices, simulated orders; testnet: the exchange's test "
        "environment; live: real money.",
    )
    market: Market = Field("spot", description="spot or futures (perpetual swaps; allows short positions).")
    credentials: Credentials | None = Field(
        None,
        description="API credentials as env:VARIABLE or store:NAME references; required for testnet and live.",
    )
    leverage: Number | None = Field(
        None, ge=1, le=125, description="Futures only: leverage per position (default 1)."
    )
    margin_mode: Literal["isolated", "cross"] | None = Field(
        None, description="Futures only: isolated or cross margin (default isolated)."
    )


class Capital(ConfigModel):
    """The money the bot manages."""

    initial: Money = Field(
        description="Starting capital in the quote currency: 1000, or with its currency: '1 BTC'."
    )
    currency: Currency | None = Field(
        None, description="Quote currency of the capital (e.g. USDT); every pair must be quoted in it."
    )
    max_per_trade: _Fraction = Field(
        1.0, description="Largest position, as a ratio of the capital (10% or 0.1)."
    )
    reinvest: _Share = Field(
        1.0, description="Share of realised profits added to the capital that positions are sized from."
    )

    @model_validator(mode="before")
    @classmethod
    def _split_initial(cls, data: Any) -> Any:
        # `initial: 1 BTC` sets the currency too; a different explicit `currency` is caught later, at its position.
        if isinstance(data, dict):
            split = split_money(data.get("initial"))
            if split is not None and data.get("currency") is None:
                return {**data, "initial": split[0], "currency": split[1]}
        return data


class ProfitLock(ConfigModel):
    """Once a trade has gained `activate_at`, move its stop so that it keeps at least `keep`."""

    activate_at: _Gain = Field(description="Profit at which the lock engages, e.g. 10%.")
    keep: _Keep = Field(description="Profit the stop then secures, e.g. 5%; below activate_at.")


class Risk(ConfigModel):
    """Position sizing and exits enforced by the risk manager. The stops here apply where the strategy
    declares none of its own (the strategy's stops come first)."""

    risk_per_trade: _Fraction | None = Field(
        None,
        description="Capital lost when a stop is hit, as a ratio: sizes positions from the stop distance.",
    )
    max_exposure: _Fraction = Field(
        1.0, description="Cap on the value of all open positions, as a ratio of equity."
    )
    max_open_trades: Int | None = Field(None, ge=1, description="Cap on simultaneously open positions.")
    daily_loss_limit: _Fraction | None = Field(
        None,
        description="No new entries for the rest of the UTC day after losing this ratio of the day's starting equity.",
    )
    daily_limit_closes_positions: Bool = Field(
        False, description="Also close open positions when the daily loss limit is hit."
    )
    stop_loss: _StopRatio | None = Field(
        None, description="Stop-loss distance as a ratio of the entry price, e.g. 5%."
    )
    take_profit: _Target | None = Field(
        None, description="Profit target as a ratio of the entry price, e.g. 10%."
    )
    trailing: Trailing | None = Field(None, description="Trailing stop: {activate_at, distance}.")
    profit_lock: ProfitLock | None = Field(
        None, description="Lock in a profit once reached: {activate_at, keep}."
    )


class StoplossGuard(ConfigModel):
    """Pause entries after several stop-outs in a short time."""

    trade_limit: Int = Field(ge=1, description="Number of losing stop-outs that triggers the pause.")
    lookback: Duration = Field(description="Window in which they are counted, e.g. 6h.")
    stop_duration: Duration = Field(description="How long entries pause, e.g. 2h.")
    only_per_pair: Bool = Field(False, description="Pause only the pair that stopped out, not every pair.")


class MaxDrawdown(ConfigModel):
    """Pause all entries when equity falls too far below its recent peak."""

    max_ratio: _Fraction = Field(description="Drawdown from the peak that triggers the pause, e.g. 20%.")
    lookback: Duration = Field(description="Window for the peak, e.g. 2d.")
    stop_duration: Duration = Field(description="How long entries pause, e.g. 12h.")


class LowProfitPairs(ConfigModel):
    """Pause a pair whose recent trades earned too little."""

    min_profit: _Profit = Field(
        description="Summed profit ratio below which the pair pauses, e.g. 0% or -2%."
    )
    lookback: Duration = Field(description="Window of closed trades considered, e.g. 1d.")
    stop_duration: Duration = Field(description="How long the pair pauses, e.g. 12h.")
    trade_limit: Int = Field(1, ge=1, description="Minimum number of trades in the window before judging.")


class Protections(ConfigModel):
    """Rules that pause entries after bad outcomes (enforced identically in backtests and live)."""

    cooldown_bars: Int = Field(
        0, ge=0, description="Candles to wait after an exit before re-entering the same pair."
    )
    stoploss_guard: StoplossGuard | None = Field(None, description="Pause after repeated stop-outs.")
    max_drawdown: MaxDrawdown | None = Field(None, description="Pause after a deep drawdown.")
    low_profit_pairs: LowProfitPairs | None = Field(None, description="Pause pairs that earn too little.")
    max_consecutive_losing_days: Int | None = Field(
        None, ge=1, description="Pause entries for a day after this many losing UTC days in a row."
    )
    max_position_size: Number | None = Field(
        None, gt=0, description="Cap on one position's value in the quote currency."
    )


class Fees(ConfigModel):
    """Trading fees as ratios of the traded value."""

    maker: _Fee = Field(0.001, description="Fee for orders that rest on the book (limit orders), e.g. 0.1%.")
    taker: _Fee = Field(0.001, description="Fee for orders that fill at once (market orders), e.g. 0.1%.")


class Bot(ConfigModel):
    """A bot: one strategy trading a list of pairs on one exchange account."""

    bot: Name = Field(
        description="Name of the bot (letters, digits, '_', '-', '.'); unique among running bots."
    )
    description: str | None = Field(None, description="What the bot is for, for people.")
    strategy: str = Field(min_length=1, description="Path of the strategy file, relative to this bot file.")
    params: dict[Identifier, ParamValue] = Field(
        default_factory=dict,
        description="Overrides of the strategy's inputs by name; each within the input's range.",
    )
    exchange: Exchange = Field(
        description="Exchange, mode (backtest/paper/testnet/live), market and credentials."
    )
    pairs: Annotated[list[Pair], Field(min_length=1)] = Field(
        description="Markets to trade: BASE/QUOTE (ETH/BTC); futures BASE/QUOTE:SETTLE (BTC/USDT:USDT)."
    )
    capital: Capital = Field(description="Starting capital, per-trade cap and reinvestment of profits.")
    risk: Risk = Field(default_factory=Risk, description="Position sizing and exits.")
    protections: Protections = Field(
        default_factory=Protections, description="Entry pauses after bad outcomes."
    )
    fees: Fees = Field(default_factory=Fees, description="Trading fees used by backtests and paper trading.")
    slippage: _Slippage = Field(
        0.0,
        description="Price lost on every market fill in backtests and paper trading, as a ratio, e.g. 0.05%.",
    )
    notifications: NotificationsConfig | None = Field(
        None,
        description="Where the running engine reports this bot's trades, risk halts, reloads, errors and "
        "daily summary: telegram, webhooks, email (secrets as env:NAME).",
    )
    profiles: dict[Name, BotOverlay] = Field(
        default_factory=dict,
        description="Named overlays (e.g. live, testnet) deep-merged over this file when chosen with --profile.",
    )


# ----- profile overlays: the same keys, all optional (a deep partial of Bot) -----------------------
_NOT_IN_OVERLAY = {"bot", "profiles"}
_partials: dict[type[BaseModel], type[BaseModel]] = {}


def _partial_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _partial(annotation)
    if origin is Annotated:
        inner, *extra = typing.get_args(annotation)
        return Annotated[(_partial_type(inner), *extra)]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        return Union[tuple(_partial_type(arg) for arg in typing.get_args(annotation))]  # noqa: UP007
    if origin is dict:
        key, value = typing.get_args(annotation)
        return dict[key, _partial_type(value)]  # type: ignore[valid-type]
    return annotation  # lists and scalars are replaced whole, so they keep their full type


def _partial(model: type[BaseModel], exclude: set[str] | None = None) -> type[BaseModel]:
    if model in _partials and not exclude:
        return _partials[model]
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if exclude and name in exclude:
            continue
        annotation = _partial_type(info.rebuild_annotation())
        fields[name] = (
            annotation | None,
            FieldInfo(default=None, description=info.description),
        )
    partial = create_model(  # type: ignore[call-overload]
        f"{model.__name__}Overlay",
        __base__=ConfigModel,
        __doc__=f"{model.__doc__} (overlay: every key optional)",
        **fields,
    )
    if not exclude:
        _partials[model] = partial
    return partial


BotOverlay = _partial(Bot, exclude=_NOT_IN_OVERLAY)
BotOverlay.__doc__ = "A profile: any keys of a bot (except `bot` and `profiles`), deep-merged over the bot."
Bot.model_rebuild(force=True, _types_namespace={"BotOverlay": BotOverlay})
