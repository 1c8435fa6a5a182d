"""The strategy document (``strategies/*.yaml``): inputs, features and rules written in the DSL."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from engine.config._types import (
    Bool,
    ConfigModel,
    Expression,
    Identifier,
    Int,
    Name,
    Number,
    StopValue,
    Timeframe,
    ratio,
)

__all__ = [
    "Alert",
    "BoolInput",
    "FloatInput",
    "Input",
    "IntInput",
    "Score",
    "ScoreSignal",
    "Sides",
    "Signals",
    "Stops",
    "Strategy",
    "Trailing",
]


class IntInput(ConfigModel):
    """A whole-number input, e.g. a window length."""

    type: Literal["int"] | None = Field(
        None, description="Optional: 'int' is inferred when the default and the range are whole numbers."
    )
    default: Int = Field(description="Value used when a bot does not override it.")
    range: Annotated[list[Int], Field(min_length=2, max_length=2)] | None = Field(
        None, description="[low, high], inclusive: the values `engine optimize` may try and a bot may set."
    )
    step: Int | None = Field(None, gt=0, description="Optional grid step for the optimiser (default 1).")
    description: str | None = Field(None, description="What the input controls.")


class FloatInput(ConfigModel):
    """A real-number input, e.g. a threshold or a multiplier."""

    type: Literal["float"] | None = Field(
        None, description="Optional: 'float' is inferred when the default or a range bound has a fraction."
    )
    default: Number = Field(description="Value used when a bot does not override it.")
    range: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = Field(
        None, description="[low, high], inclusive: the values `engine optimize` may try and a bot may set."
    )
    step: Number | None = Field(
        None, gt=0, description="Optional grid step for the optimiser (default: continuous)."
    )
    description: str | None = Field(None, description="What the input controls.")


class BoolInput(ConfigModel):
    """An on/off input, e.g. whether a filter is used."""

    type: Literal["bool"] | None = Field(
        None, description="Optional: 'bool' is inferred from a true/false default."
    )
    default: Bool = Field(description="Value used when a bot does not override it.")
    description: str | None = Field(None, description="What the input controls.")


def _input_kind(value: Any) -> str:
    """Which input model applies: the explicit `type`, else inferred from the default and range. An
    input already built (what serialising a strategy or model hands over) is its own kind."""
    for kind, cls in (("int", IntInput), ("float", FloatInput), ("bool", BoolInput)):
        if isinstance(value, cls):
            return kind
    if not isinstance(value, dict):
        return "float"  # reported as "expected a mapping" by that model
    explicit = value.get("type")
    if explicit in ("int", "float", "bool"):
        return explicit
    if explicit is not None:
        return "invalid"
    default = value.get("default")
    if isinstance(default, bool):
        return "bool"
    bounds = value.get("range")
    numbers = [default, *(bounds if isinstance(bounds, list) else [])]
    if all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return "int"
    return "float"


Input = Annotated[
    Annotated[IntInput, Tag("int")] | Annotated[FloatInput, Tag("float")] | Annotated[BoolInput, Tag("bool")],
    Discriminator(
        _input_kind,
        custom_error_type="CFG002",
        custom_error_message="an input's type must be 'int', 'float' or 'bool'",
    ),
]


class Sides(ConfigModel):
    """One rule per side of the market; either side may be left out."""

    long: Expression | None = Field(
        None, description="Condition for the long side (buy to open, sell to close)."
    )
    short: Expression | None = Field(
        None, description="Condition for the short side (sell to open, buy to close; futures only)."
    )


class Signals(ConfigModel):
    """Lists of conditions per side."""

    long: list[Expression] = Field(default_factory=list, description="Conditions for long entries.")
    short: list[Expression] = Field(default_factory=list, description="Conditions for short entries.")


class ScoreSignal(ConfigModel):
    """One scored condition."""

    when: Expression = Field(description="The condition.")
    weight: Number = Field(
        1.0, gt=0, description="Points added to the score on candles where the condition holds."
    )
    description: str | None = Field(None, description="What the signal means.")


class Score(ConfigModel):
    """Weighted voting: the entry also needs the sum of the weights of the true signals to reach the threshold."""

    threshold: Number = Field(gt=0, description="Minimum score for an entry.")
    signals: Annotated[list[ScoreSignal], Field(min_length=1)] = Field(description="The scored conditions.")


class ScoreSides(ConfigModel):
    """Scoring per side."""

    long: Score | None = Field(None, description="Scoring of long entries.")
    short: Score | None = Field(None, description="Scoring of short entries.")


_Activation = ratio(0.0, 100.0, low_inclusive=True)
_Distance = ratio(0.0, 1.0, high_inclusive=False)


class Trailing(ConfigModel):
    """A stop that follows the best price once the trade is in profit."""

    activate_at: _Activation = Field(
        0.0,
        description="Profit (ratio of the entry price) at which trailing starts; 0 trails from the entry.",
    )
    distance: _Distance = Field(
        description="How far the stop follows behind the best price, as a ratio of it."
    )


class Stops(ConfigModel):
    """Exit levels. A percentage or a plain fraction is a ratio of the entry price; an expression is a
    price distance from the entry (e.g. `2 * atr(14)`), evaluated on the entry candle."""

    stop_loss: StopValue | None = Field(
        None,
        description="Distance to the protective stop: 5% / 0.05, or an expression giving a price distance.",
    )
    take_profit: StopValue | None = Field(
        None,
        description="Distance to the profit target: 10% / 0.1, or an expression giving a price distance.",
    )
    trailing: Trailing | None = Field(None, description="Trailing stop.")


class Alert(ConfigModel):
    """A named condition that sends a notification (pair, score, why) when it holds at a candle close."""

    when: Expression = Field(description="The condition, evaluated at each close.")
    score: Expression | None = Field(
        None, description="A number shown with the alert (e.g. `pump_score().score`); optional."
    )
    message: str = Field(min_length=1, description="Why the alert fires, in words (sent with it).")
    every: Int = Field(
        12,
        ge=1,
        description="Rate limit: at most one alert per bot, pair and alert within this many candles.",
    )


class Strategy(ConfigModel):
    """A trading strategy: what to compute on the candles and when to enter and leave."""

    strategy: Name = Field(description="Name of the strategy (letters, digits, '_', '-', '.').")
    description: str | None = Field(None, description="What the strategy does, for people.")
    timeframe: Timeframe = Field(description="Candle timeframe the rules run on, e.g. 5m.")
    inputs: dict[Identifier, Input] = Field(
        default_factory=dict,
        description="Tunable constants by name: {default, range, step}. Rules use them by name; bots override them in `params`.",
    )
    features: dict[Identifier, Expression] = Field(
        default_factory=dict,
        description="Named series (expressions) that rules and other features use by name.",
    )
    entry: Sides = Field(description="When to open a position (at least one side).")
    exit: Sides = Field(
        default_factory=Sides, description="When to close a position on a signal (besides stops)."
    )
    fast_exit: Sides = Field(
        default_factory=Sides,
        description="Exits worth taking before the close (e.g. dump_risk), exit reason fast_exit. Backtests "
        "fill them at the next open, no better than the signal candle's low (long) / high (short); bots of "
        "engine run on live candles evaluate them between closes on the trade stream (at most once a second, "
        "while a position is held) and leave at market at once.",
    )
    confirm: Signals = Field(
        default_factory=Signals,
        description="Extra conditions, often on higher timeframes (close@1h > ...), all required for an entry.",
    )
    score: ScoreSides = Field(
        default_factory=ScoreSides, description="Weighted scoring an entry must also pass."
    )
    stops: Stops = Field(
        default_factory=Stops, description="Stop-loss, take-profit and trailing stop of the strategy."
    )
    size: Expression | None = Field(
        None,
        description="Position size: an expression giving the fraction of the stake the bot's `risk:` "
        "section allows, evaluated on the entry signal's candle (e.g. `ml.btc_direction.confidence`). "
        "Above 1 counts as 1; 0, below 0 or NaN means no entry. Default: the full stake.",
    )
    alerts: dict[Identifier, Alert] = Field(
        default_factory=dict,
        description="Momentum alerts by name: {when, score, message, every}; notified, never traded on.",
    )
