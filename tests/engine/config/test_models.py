"""Value types and models: percentages and fractions, money, pairs, secrets, inputs, overlays."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.config import Bot, BotOverlay, Strategy
from engine.config._strategy import BoolInput, FloatInput, IntInput

BOT = {
    "bot": "b",
    "strategy": "s.yaml",
    "exchange": {"name": "binance"},
    "pairs": ["ETH/BTC"],
    "capital": {"initial": 1},
}


def bot(**changes):
    return Bot.model_validate({**BOT, **changes})


def error_types(exc: ValidationError) -> list[str]:
    return [e["type"] for e in exc.errors()]


@pytest.mark.parametrize(
    ("written", "ratio"), [("10%", 0.1), (0.1, 0.1), ("0.5 %", 0.005), (1, 1.0), ("100%", 1.0)]
)
def test_percentages_and_fractions_are_the_same(written, ratio):
    assert bot(capital={"initial": 1, "max_per_trade": written}).capital.max_per_trade == pytest.approx(ratio)


@pytest.mark.parametrize("written", ["0%", 0, "101%", 10, "ten", True, None, "-5%"])
def test_ratio_bounds_and_types(written):
    with pytest.raises(ValidationError) as info:
        bot(capital={"initial": 1, "max_per_trade": written})
    assert error_types(info.value) == ["CFG002"]


def test_plain_number_above_one_explains_itself():
    with pytest.raises(ValidationError) as info:
        bot(capital={"initial": 1, "max_per_trade": 10})
    assert "write 10% for a percentage" in info.value.errors()[0]["msg"]


def test_defaults_match_the_documented_ones():
    model = bot()
    assert model.exchange.mode == "paper" and model.exchange.market == "spot"
    assert model.fees.maker == 0.001 and model.fees.taker == 0.001 and model.slippage == 0.0
    assert model.capital.max_per_trade == 1.0 and model.capital.reinvest == 1.0
    assert model.risk.max_exposure == 1.0 and model.protections.cooldown_bars == 0


@pytest.mark.parametrize(
    ("written", "amount", "currency"),
    [("1 BTC", 1.0, "BTC"), ("2.5 usdt", 2.5, "USDT"), (1000, 1000.0, None)],
)
def test_money(written, amount, currency):
    capital = bot(capital={"initial": written}).capital
    assert (capital.initial, capital.currency) == (amount, currency)


@pytest.mark.parametrize("pair", ["ETH/BTC", "BTC/USDT:USDT", "1000SHIB/USDT"])
def test_valid_pairs(pair):
    assert bot(pairs=[pair]).pairs == [pair]


@pytest.mark.parametrize("pair", ["eth/btc", "ETHBTC", "ETH/BTC/X", "", "ETH/ BTC", 12])
def test_invalid_pairs(pair):
    with pytest.raises(ValidationError) as info:
        bot(pairs=[pair])
    assert error_types(info.value) == ["CFG006"]


def test_secrets_must_be_env_references_and_are_never_echoed():
    ok = bot(exchange={"name": "binance", "credentials": {"key": "env:K", "secret": "env:S"}})
    assert ok.exchange.credentials.key == "env:K"
    with pytest.raises(ValidationError) as info:
        bot(exchange={"name": "binance", "credentials": {"key": "hunter2-secret", "secret": "env:1BAD"}})
    errors = info.value.errors()
    assert [e["type"] for e in errors] == ["CFG004", "CFG004"]
    assert all("hunter2" not in e["msg"] for e in errors)
    assert "hunter2" not in str(info.value)


def test_models_are_frozen():
    model = bot()
    with pytest.raises(ValidationError):
        model.bot = "other"


def test_input_kinds_are_inferred():
    strategy = Strategy.model_validate(
        {
            "strategy": "s",
            "timeframe": "5m",
            "inputs": {
                "length": {"default": 14, "range": [5, 30]},
                "mult": {"default": 2, "range": [1, 3.5]},
                "ratio": {"default": 0.5},
                "flag": {"default": True},
                "forced": {"type": "float", "default": 2, "range": [1, 3]},
            },
            "entry": {"long": "close > open"},
        }
    )
    kinds = {name: type(spec) for name, spec in strategy.inputs.items()}
    assert kinds == {
        "length": IntInput,
        "mult": FloatInput,
        "ratio": FloatInput,
        "flag": BoolInput,
        "forced": FloatInput,
    }


def test_rules_accept_yaml_literals_as_expressions():
    strategy = Strategy.model_validate({"strategy": "s", "timeframe": "1h", "entry": {"long": True}})
    assert strategy.entry.long == "true"


def test_stop_values_are_ratios_or_expressions():
    stops = Strategy.model_validate(
        {
            "strategy": "s",
            "timeframe": "1h",
            "entry": {"long": "close > open"},
            "stops": {"stop_loss": "2 * atr(14)", "take_profit": "6%"},
        }
    ).stops
    assert stops.stop_loss == "2 * atr(14)" and stops.take_profit == pytest.approx(0.06)


def test_overlay_is_a_deep_partial_of_the_bot():
    overlay = BotOverlay.model_validate({"exchange": {"mode": "live"}, "capital": {"max_per_trade": "5%"}})
    assert overlay.exchange.mode == "live" and overlay.exchange.name is None
    assert overlay.capital.max_per_trade == pytest.approx(0.05)
    for forbidden in ({"bot": "x"}, {"profiles": {}}, {"exchange": {"nmae": "x"}}):
        with pytest.raises(ValidationError):
            BotOverlay.model_validate(forbidden)
