"""The rule DSL: parse -> check -> compile into a :class:`Plan`. ``dsl`` never imports ``engine``;
the engine hands the compiler a :class:`Registry` of functions and feeds.

    plan = compile_rules(features, rules, inputs, registry, timeframe="5m")
    signals = plan.evaluate(candles)      # one column per rule and feature
"""

from dsl.ast import Expr, to_source
from dsl.compiler import compile_expression, compile_rules
from dsl.errors import Diagnostic, DiagnosticError, Span, render_diagnostics
from dsl.parser import Source, parse_expression
from dsl.plan import Plan, resample_candles
from dsl.registry import Column, FeedSpec, FunctionSpec, Param, Registry
from dsl.types import BOOL, BOOL_CONST, NUMBER, NUMBER_CONST, STRING_CONST, Kind, Type

__all__ = [
    "BOOL",
    "BOOL_CONST",
    "NUMBER",
    "NUMBER_CONST",
    "STRING_CONST",
    "Column",
    "Diagnostic",
    "DiagnosticError",
    "Expr",
    "FeedSpec",
    "FunctionSpec",
    "Kind",
    "Param",
    "Plan",
    "Registry",
    "Source",
    "Span",
    "Type",
    "compile_expression",
    "compile_rules",
    "parse_expression",
    "render_diagnostics",
    "resample_candles",
    "to_source",
]
