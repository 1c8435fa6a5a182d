"""Bots and strategies as YAML: line-aware loading, typed models, validation with every error at its
file position, JSON Schema for editors, and ``env:`` secrets resolved at run time.

    strategy = load_strategy("strategies/ema_rsi.yaml")          # model + compiled dsl.Plan
    model = load_model("models/btc_direction.yaml")               # ML model spec + feature plan
    bot = load_bot("bots/eth_btc.yaml", profile="testnet")        # profile overlay applied
    diagnostics = validate_files(["bots", "strategies"])          # [] when everything is valid

Loading raises :class:`dsl.DiagnosticError` carrying every diagnostic found. The keys and the
error codes are documented in docs/config.md.
"""

from engine.config._bot import (
    Bot,
    BotOverlay,
    Capital,
    Credentials,
    Exchange,
    Fees,
    LowProfitPairs,
    MaxDrawdown,
    ProfitLock,
    Protections,
    Risk,
    StoplossGuard,
)
from engine.config._load import (
    LoadedBot,
    LoadedStrategy,
    StrategyCompiler,
    ValidationReport,
    detect_kind,
    load_bot,
    load_strategy,
    validate_files,
    validate_report,
)
from engine.config._model import Model
from engine.config._model_load import LoadedModel, load_model
from engine.config._secrets import resolve_secret
from engine.config._session import display_path
from engine.config._strategy import (
    BoolInput,
    FloatInput,
    IntInput,
    Score,
    ScoreSignal,
    Sides,
    Signals,
    Stops,
    Strategy,
    Trailing,
)
from engine.config._yaml import YamlDocument, YamlNode, parse_yaml, read_yaml_file

__all__ = [
    "BoolInput",
    "Bot",
    "BotOverlay",
    "Capital",
    "Credentials",
    "Exchange",
    "Fees",
    "FloatInput",
    "IntInput",
    "LoadedBot",
    "LoadedModel",
    "LoadedStrategy",
    "LowProfitPairs",
    "MaxDrawdown",
    "Model",
    "ProfitLock",
    "Protections",
    "Risk",
    "Score",
    "ScoreSignal",
    "Sides",
    "Signals",
    "StoplossGuard",
    "Stops",
    "Strategy",
    "StrategyCompiler",
    "Trailing",
    "ValidationReport",
    "YamlDocument",
    "YamlNode",
    "detect_kind",
    "display_path",
    "load_bot",
    "load_model",
    "load_strategy",
    "parse_yaml",
    "read_yaml_file",
    "resolve_secret",
    "validate_files",
    "validate_report",
]
