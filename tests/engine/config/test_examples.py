"""The example strategies and bots: valid, tutorial-style, and accepted by the editor schemas."""

from __future__ import annotations

import json

import pytest

from engine.config import parse_yaml, validate_report
from tests.engine.config import jsonschema_lite
from tests.engine.config.conftest import ROOT

STRATEGIES = sorted((ROOT / "strategies").glob("*.yaml"))
BOTS = sorted((ROOT / "bots").glob("*.yaml"))
SCHEMAS = {
    name: json.loads((ROOT / "schema" / f"{name}.schema.json").read_text()) for name in ("strategy", "bot")
}


def test_there_are_enough_examples():
    assert len(STRATEGIES) >= 5 and len(BOTS) >= 5
    names = {p.stem for p in STRATEGIES}
    assert {"ema_rsi", "bollinger_reversion", "donchian_breakout", "mtf_trend", "candle_reversal"} <= names


def test_every_example_is_valid(registry):
    report = validate_report([ROOT / "bots", ROOT / "strategies"], registry=registry, relative_to=ROOT)
    assert report.diagnostics == []
    assert report.summary() == f"{len(STRATEGIES) + len(BOTS)} files OK"


def test_every_strategy_is_used_by_a_bot():
    used = set()
    for bot in BOTS:
        data = parse_yaml(bot.read_bytes()).root.to_python()
        used.add((bot.parent / data["strategy"]).resolve())
    assert {p.resolve() for p in STRATEGIES} <= used


@pytest.mark.parametrize("path", STRATEGIES + BOTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_examples_are_commented_tutorials_with_a_schema_line(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    kind = "strategy" if path.parent.name == "strategies" else "bot"
    assert lines[0] == f"# yaml-language-server: $schema=../schema/{kind}.schema.json"
    comments = [line for line in lines if line.lstrip().startswith("#") or " # " in line]
    assert len(comments) >= 4, "examples teach the format: explain it in comments"


@pytest.mark.parametrize("path", STRATEGIES + BOTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_editor_schema_accepts_the_examples(path):
    kind = "strategy" if path.parent.name == "strategies" else "bot"
    data = parse_yaml(path.read_bytes()).root.to_python()
    assert jsonschema_lite.errors(SCHEMAS[kind], data) == []


@pytest.mark.parametrize(
    ("kind", "change", "fragment"),
    [
        ("bot", {"exchange": {"name": "binance", "mode": "papr"}}, "exchange.mode"),
        ("bot", {"capital": {"initial": "1 BTC", "max_per_trade": "ten"}}, "capital.max_per_trade"),
        ("bot", {"pairs": ["eth/btc"]}, "pairs[0]"),
        ("bot", {"risk": {"stop_los": "5%"}}, "risk.stop_los: unknown key"),
        (
            "bot",
            {"profiles": {"live": {"exchange": {"mode": "live", "nmae": "x"}}}},
            "profiles.live.exchange",
        ),
        ("strategy", {"timeframe": "7m"}, "timeframe"),
        ("strategy", {"inputs": {"fast": {"default": 1, "rnage": [1, 2]}}}, "inputs.fast"),
    ],
)
def test_the_editor_schema_rejects_mistakes(kind, change, fragment):
    path = ROOT / ("bots/eth_btc_trend.yaml" if kind == "bot" else "strategies/ema_rsi.yaml")
    data = {**parse_yaml(path.read_bytes()).root.to_python(), **change}
    found = jsonschema_lite.errors(SCHEMAS[kind], data)
    assert any(fragment in message for message in found), found
