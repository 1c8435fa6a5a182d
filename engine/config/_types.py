"""Value types shared by the strategy and bot models: ratios, money, pairs, secrets, names.

Each is an ``Annotated`` type whose validator raises a ``PydanticCustomError`` whose *type* is the
diagnostic code (CFG002, CFG004, CFG006, CFG007), so the error mapper can report it as is. Each also
declares the JSON Schema of what a user may write (``10%`` as well as ``0.1``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

from dsl.errors import did_you_mean
from dsl.timeframes import SUPPORTED_TIMEFRAMES, parse_duration
from engine.config._exchanges import EXCHANGES

__all__ = [
    "TYPE_LABELS",
    "Bool",
    "ConfigModel",
    "Currency",
    "Duration",
    "ExchangeName",
    "Expression",
    "Identifier",
    "Int",
    "Money",
    "Name",
    "Number",
    "Pair",
    "ParamValue",
    "SecretRef",
    "StopValue",
    "Timeframe",
    "describe",
    "format_ratio",
    "parse_percent",
    "ratio",
]

_PERCENT = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*%\s*$")
_MONEY = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s+([A-Za-z0-9]{2,12})\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PAIR = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(?::[A-Z0-9]{1,20})?$")
_CURRENCY = re.compile(r"^[A-Z0-9]{2,12}$")
_ENV = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")
# A key kept encrypted in the engine's key store (set in the web app or `PUT /config/secrets/NAME`).
_STORE = re.compile(r"^store:[A-Za-z0-9_.-]{1,100}$")
_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|store:[A-Za-z0-9_.-]{1,100})$")
_RESERVED = frozenset({"and", "or", "not", "true", "false"})


class ConfigModel(BaseModel):
    """Base of every configuration model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


# JSON Schema of each value type -> the name docs/config.md gives it (filled by _schema below).
TYPE_LABELS: dict[str, str] = {}


def schema_key(schema: dict[str, Any]) -> str:
    """A lookup key for a schema fragment, ignoring the keys pydantic adds per field."""
    return json.dumps(
        {k: v for k, v in schema.items() if k not in ("title", "description", "default")}, sort_keys=True
    )


def _schema(label: str, schema: dict[str, Any]) -> WithJsonSchema:
    TYPE_LABELS[schema_key(schema)] = label
    return WithJsonSchema(schema)


def _error(code: str, message: str, **ctx: Any) -> PydanticCustomError:
    # Braces in user text must not be taken for template fields.
    return PydanticCustomError(code, message.replace("{", "{{").replace("}", "}}"), ctx or None)


def describe(value: Any) -> str:
    """How a user would name the value they wrote, for 'got ...' in messages."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"'{shown}'"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _plain_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def format_ratio(value: float) -> str:
    """0.015 -> '1.5%'."""
    text = f"{value * 100:.6f}".rstrip("0").rstrip(".")
    return f"{text}%"


def parse_percent(text: str) -> float | None:
    """'1.5%' -> 0.015; None when the text is not a percentage."""
    match = _PERCENT.match(text)
    return float(match.group(1)) / 100 if match else None


# ----- numbers ----------------------------------------------------------------------------------
def _number(value: Any) -> Any:
    number = _plain_number(value)
    if number is None:
        raise _error("CFG002", f"expected a number, got {describe(value)}")
    if not math.isfinite(number):
        raise _error("CFG002", f"expected a finite number, got {value}")
    return value


def _int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error("CFG002", f"expected a whole number, got {describe(value)}")
    return value


def _bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise _error("CFG002", f"expected true or false, got {describe(value)}")
    return value


Number = Annotated[float, BeforeValidator(_number)]
# Plain JSON types (no WithJsonSchema), so that Field(gt=...) becomes minimum/exclusiveMinimum.
Int = Annotated[int, BeforeValidator(_int), Strict()]
Bool = Annotated[bool, BeforeValidator(_bool), Strict()]
TYPE_LABELS.update(
    {
        schema_key({"type": "number"}): "number",
        schema_key({"type": "integer"}): "whole number",
        schema_key({"type": "boolean"}): "true/false",
    }
)


def _param_value(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if _plain_number(value) is None or not math.isfinite(float(value)):
        raise _error("CFG008", f"a parameter is a number or true/false, got {describe(value)}")
    return value


ParamValue = Annotated[
    int | float | bool,
    BeforeValidator(_param_value),
    _schema("number or true/false", {"type": ["number", "boolean"]}),
]

_PERCENT_SCHEMA = {"type": "string", "pattern": r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*%\s*$"}


def ratio(
    low: float = 0.0,
    high: float = 1.0,
    *,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
) -> Any:
    """A ratio written as ``10%`` or ``0.1``, checked to lie between ``low`` and ``high``."""

    def bounds() -> str:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        return f"{left}{format_ratio(low)}, {format_ratio(high)}{right}"

    def check(value: Any) -> float:
        if isinstance(value, str):
            parsed = parse_percent(value)
            if parsed is None:
                raise _error(
                    "CFG002", f"expected a percentage like 10% or a fraction like 0.1, got {describe(value)}"
                )
        else:
            number = _plain_number(value)
            if number is None:
                raise _error(
                    "CFG002", f"expected a percentage like 10% or a fraction like 0.1, got {describe(value)}"
                )
            parsed = number
        above = parsed > high or (parsed == high and not high_inclusive)
        below = parsed < low or (parsed == low and not low_inclusive)
        if not math.isfinite(parsed) or above or below:
            hint = ""
            if not isinstance(value, str) and parsed > high and parsed <= 100 and high <= 1:
                hint = f" (a plain number is a fraction: {describe(value)} means {format_ratio(parsed)}; write {describe(value)}% for a percentage)"
            raise _error("CFG002", f"must be within {bounds()}, got {format_ratio(parsed)}{hint}")
        return parsed

    number: dict[str, Any] = {"type": "number"}
    number["minimum" if low_inclusive else "exclusiveMinimum"] = low
    number["maximum" if high_inclusive else "exclusiveMaximum"] = high
    schema = {"anyOf": [number, _PERCENT_SCHEMA]}
    return Annotated[float, BeforeValidator(check), _schema(f"percentage or fraction in {bounds()}", schema)]


# ----- names ------------------------------------------------------------------------------------
def _name(value: Any) -> Any:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _error(
            "CFG002",
            f"expected a name of letters, digits, '_', '-' or '.' (at most 64, starting with a letter or digit), got {describe(value)}",
        )
    return value


def _identifier(value: Any) -> Any:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise _error(
            "CFG002",
            f"expected a name of letters, digits and '_' that does not start with a digit, got {describe(value)}",
        )
    if value in _RESERVED:
        raise _error("CFG002", f"'{value}' is a reserved word of the rule language")
    return value


Name = Annotated[str, BeforeValidator(_name), _schema("name", {"type": "string", "pattern": _NAME.pattern})]
Identifier = Annotated[
    str,
    BeforeValidator(_identifier),
    _schema("identifier", {"type": "string", "pattern": _IDENTIFIER.pattern}),
]


def _timeframe(value: Any) -> Any:
    if not isinstance(value, str):
        raise _error("CFG007", f"expected a timeframe like 5m or 1h, got {describe(value)}")
    if value not in SUPPORTED_TIMEFRAMES:
        shown = describe(value)
        hint = did_you_mean(value, SUPPORTED_TIMEFRAMES) if isinstance(value, str) else ""
        raise _error(
            "CFG007",
            f"unsupported timeframe {shown}{hint} (supported: {', '.join(SUPPORTED_TIMEFRAMES)})",
        )
    return value


Timeframe = Annotated[
    str,
    BeforeValidator(_timeframe),
    _schema("timeframe", {"type": "string", "enum": list(SUPPORTED_TIMEFRAMES)}),
]


def _duration(value: Any) -> Any:
    if not isinstance(value, str):
        raise _error("CFG002", f"expected a duration like 30m, 4h or 1d, got {describe(value)}")
    try:
        parse_duration(value)
    except ValueError as exc:
        raise _error("CFG002", str(exc)) from None
    return value.strip()


Duration = Annotated[
    str,
    BeforeValidator(_duration),
    _schema("duration", {"type": "string", "pattern": r"^\d+[smhdw]$"}),
]


def _pair(value: Any) -> Any:
    if isinstance(value, str) and _PAIR.match(value):
        return value
    hint = ""
    if isinstance(value, str):
        guess = re.sub(r"[-_ ]", "/", value.strip()).upper()
        if guess != value and _PAIR.match(guess):
            hint = f" (did you mean '{guess}'?)"
    raise _error(
        "CFG006",
        f"invalid pair {describe(value)}: write BASE/QUOTE in capitals, like ETH/BTC (futures: BTC/USDT:USDT){hint}",
    )


Pair = Annotated[str, BeforeValidator(_pair), _schema("pair", {"type": "string", "pattern": _PAIR.pattern})]


def _currency(value: Any) -> Any:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise _error(
            "CFG002", f"expected a currency code in capitals like BTC or USDT, got {describe(value)}"
        )
    return value


Currency = Annotated[
    str, BeforeValidator(_currency), _schema("currency", {"type": "string", "pattern": _CURRENCY.pattern})
]


def split_money(value: Any) -> tuple[float, str] | None:
    """'1.5 BTC' -> (1.5, 'BTC'); None when the value is not an amount with a currency."""
    if isinstance(value, str):
        match = _MONEY.match(value)
        if match:
            return float(match.group(1)), match.group(2).upper()
    return None


def _money(value: Any) -> Any:
    split = split_money(value)
    amount = split[0] if split else _plain_number(value)
    if amount is None:
        raise _error("CFG002", f"expected an amount like 1000 or '1 BTC', got {describe(value)}")
    if not math.isfinite(amount) or amount <= 0:
        raise _error("CFG002", f"must be more than 0, got {describe(value)}")
    return amount


Money = Annotated[
    float,
    BeforeValidator(_money),
    _schema(
        "amount",
        {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": _MONEY.pattern}]},
    ),
]


def _exchange(value: Any) -> Any:
    if not isinstance(value, str) or value not in EXCHANGES:
        hint = did_you_mean(value.lower(), EXCHANGES) if isinstance(value, str) else ""
        if isinstance(value, str) and value.lower() in EXCHANGES:
            hint = f" (did you mean '{value.lower()}'?)"
        hint = hint or " (an exchange id of ccxt, e.g. binance)"
        raise _error("CFG002", f"unknown exchange {describe(value)}{hint}")
    return value


ExchangeName = Annotated[
    str, BeforeValidator(_exchange), _schema("exchange id", {"type": "string", "enum": list(EXCHANGES)})
]


def _secret(value: Any) -> Any:
    if isinstance(value, str) and (_ENV.match(value.strip()) or _STORE.match(value.strip())):
        return value.strip()
    if isinstance(value, str) and value.strip().startswith("env:"):
        raise _error("CFG004", "write env:NAME where NAME is an environment variable (letters, digits, '_')")
    if isinstance(value, str) and value.strip().startswith("store:"):
        raise _error(
            "CFG004", "write store:NAME where NAME is a key store name (letters, digits, '_', '.', '-')"
        )
    # Never repeat the value: it may be a real key.
    raise _error(
        "CFG004",
        "secrets are never written in YAML: use env:VARIABLE_NAME (an environment variable) or "
        "store:NAME (a key saved encrypted in the engine's key store)",
    )


SecretRef = Annotated[
    str,
    BeforeValidator(_secret),
    _schema("env:NAME or store:NAME", {"type": "string", "pattern": _SECRET_REF.pattern}),
]


# ----- rule-language text -----------------------------------------------------------------------
def _expression(value: Any) -> Any:
    # YAML reads `true` or `2` as a bool or a number; in a rule they are the same DSL literal.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise _error("CFG002", f"expected a rule-language expression, got {describe(value)}")
    if not value.strip():
        raise _error("CFG002", "expected a rule-language expression, got empty text")
    return value


Expression = Annotated[
    str,
    BeforeValidator(_expression),
    _schema("expression", {"type": ["string", "number", "boolean"]}),
]


def _stop(value: Any) -> Any:
    if isinstance(value, str):
        parsed = parse_percent(value)
        if parsed is None:
            return _expression(value)
    else:
        parsed = _plain_number(value)
        if parsed is None:
            raise _error(
                "CFG002",
                f"expected a percentage like 5%, a fraction like 0.05 or an expression like '2 * atr(14)', got {describe(value)}",
            )
    if not 0 < parsed < 100:
        raise _error("CFG002", f"must be above 0% and below 10000%, got {format_ratio(parsed)}")
    return float(parsed)


StopValue = Annotated[
    float | str,
    BeforeValidator(_stop),
    _schema(
        "percentage, fraction or expression",
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string"},
            ]
        },
    ),
]
