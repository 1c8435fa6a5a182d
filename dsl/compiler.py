"""Checked AST -> Plan. Name resolution, type checking and node building happen in one walk that
collects every error (it never stops at the first); a node that failed to check yields an error
value that silences follow-on errors about the same sub-expression."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dsl import ast
from dsl.errors import Diagnostic, DiagnosticError, Span, did_you_mean
from dsl.parser import Source, parse_expression
from dsl.plan import SERIES_NAMES, Node, Plan
from dsl.registry import Column, FunctionSpec, Param, Registry
from dsl.timeframes import SUPPORTED_TIMEFRAMES, parse_duration, timeframe_seconds
from dsl.types import BOOL, BOOL_CONST, NUMBER, NUMBER_CONST, STRING_CONST, Kind, Type

__all__ = ["compile_expression", "compile_rules"]

InputValue = int | float | bool


@dataclass(frozen=True, slots=True)
class _Value:
    """A checked sub-expression: a constant (``node`` is None) or a node on timeframe ``tf``."""

    type: Type | None  # None: an error was already reported for this sub-expression
    node: int | None = None
    const: Any = None
    tf: str | None = None
    duration: str | None = None  # set for duration literals, which only some positions accept

    @property
    def failed(self) -> bool:
        return self.type is None


_ERROR = _Value(None)


def _seconds(tf: str) -> int:
    return timeframe_seconds(tf)


class _Builder:
    def __init__(
        self,
        registry: Registry,
        timeframe: str,
        inputs: Mapping[str, InputValue],
        features: Mapping[str, ast.Expr],
    ):
        self.registry = registry
        self.base = timeframe
        self.inputs = dict(inputs)
        self.features = features
        self.nodes: list[Node] = []
        self.warmups: list[int] = []
        self._interned: dict[tuple[Any, ...], int] = {}
        self.diagnostics: list[Diagnostic] = []
        self._feature_values: dict[tuple[str, str], _Value] = {}
        self._visiting: list[str] = []

    # ----- nodes -------------------------------------------------------------------------------
    def node(self, op: str, tf: str | None, args: tuple[Any, ...], type_: Type, warmup: int) -> int:
        key = (op, tf, args, type_)
        existing = self._interned.get(key)
        if existing is not None:
            return existing
        self.nodes.append(Node(op, tf, args, type_))
        self.warmups.append(warmup)
        self._interned[key] = len(self.nodes) - 1
        return len(self.nodes) - 1

    def error(self, code: str, message: str, span: Span) -> _Value:
        self.diagnostics.append(Diagnostic(code, message, span))
        return _ERROR

    def align(self, value: _Value, tf: str) -> int:
        """The node id of ``value`` carried down to timeframe ``tf`` (a no-op when already there)."""
        assert value.node is not None and value.tf is not None and value.type is not None
        if value.tf == tf:
            return value.node
        ratio = math.ceil(_seconds(value.tf) / _seconds(tf))
        # The first coarse candle may be built from a partial bucket: one more coarse candle of warm-up.
        warmup = (self.warmups[value.node] + 1) * ratio
        return self.node("align", tf, (value.node,), value.type, warmup)

    def finest(self, values: list[_Value], default: str) -> str:
        tfs = [v.tf for v in values if v.tf is not None]
        return min(tfs, key=_seconds) if tfs else default

    def as_node(self, value: _Value, tf: str) -> int:
        if value.node is None:
            return self.node("const", None, (value.const,), value.type, 0)  # type: ignore[arg-type]
        return self.align(value, tf)

    # ----- expressions -------------------------------------------------------------------------
    def visit(self, expr: ast.Expr, ctx: str) -> _Value:
        match expr:
            case ast.Number(value=value):
                return _Value(NUMBER_CONST, const=value)
            case ast.Percent(value=value):
                return _Value(NUMBER_CONST, const=value / 100)
            case ast.String(value=value):
                return _Value(STRING_CONST, const=value)
            case ast.BoolLiteral(value=value):
                return _Value(BOOL_CONST, const=value)
            case ast.Duration(text=text):
                try:
                    parse_duration(text)
                except ValueError as exc:
                    return self.error("DSL008", str(exc), expr.span)
                return _Value(NUMBER_CONST, const=None, duration=text)
            case ast.Name():
                return self.name(expr, ctx)
            case ast.Call():
                return self.call(expr, ctx, member=None)
            case ast.Member():
                return self.member(expr, ctx)
            case ast.History():
                return self.history(expr, ctx)
            case ast.AtTimeframe():
                return self.at_timeframe(expr, ctx)
            case ast.Negate(operand=operand):
                value = self.number_operand(operand, ctx, "'-'")
                if value.failed:
                    return _ERROR
                if value.node is None:
                    return _Value(NUMBER_CONST, const=-value.const)
                return _Value(
                    NUMBER,
                    self.node("neg", value.tf, (value.node,), NUMBER, self.warmups[value.node]),
                    tf=value.tf,
                )
            case ast.Not(operand=operand):
                value = self.bool_operand(operand, ctx, "'not'")
                if value.failed:
                    return _ERROR
                if value.node is None:
                    return _Value(BOOL_CONST, const=not value.const)
                return _Value(
                    BOOL,
                    self.node("not", value.tf, (value.node,), BOOL, self.warmups[value.node]),
                    tf=value.tf,
                )
            case ast.Binary(op=op, left=left, right=right):
                return self.combine("binary", op, left, right, ctx, self.number_operand, NUMBER)
            case ast.Compare(op=op, left=left, right=right):
                return self.combine("compare", op, left, right, ctx, self.number_operand, BOOL)
            case ast.Logical(op=op, left=left, right=right):
                return self.combine("logical", op, left, right, ctx, self.bool_operand, BOOL)
        raise TypeError(f"unexpected node {expr!r}")

    def operand(self, expr: ast.Expr, ctx: str, kind: Kind, what: str) -> _Value:
        value = self.visit(expr, ctx)
        if value.failed:
            return value
        if value.duration is not None:
            return self.error(
                "DSL005",
                f"a duration like {value.duration} is only valid after '@' or as a bar count (a length or a history offset)",
                expr.span,
            )
        assert value.type is not None
        if value.type.kind is not kind:
            need = "a number" if kind is Kind.NUMBER else "a condition (true/false)"
            return self.error("DSL005", f"operand of {what} must be {need}, got {value.type}", expr.span)
        return value

    def number_operand(self, expr: ast.Expr, ctx: str, what: str) -> _Value:
        return self.operand(expr, ctx, Kind.NUMBER, what)

    def bool_operand(self, expr: ast.Expr, ctx: str, what: str) -> _Value:
        return self.operand(expr, ctx, Kind.BOOL, what)

    def combine(
        self,
        op_kind: str,
        op: str,
        left_expr: ast.Expr,
        right_expr: ast.Expr,
        ctx: str,
        operand: Callable[[ast.Expr, str, str], _Value],
        series_type: Type,
    ) -> _Value:
        left = operand(left_expr, ctx, f"'{op}'")
        right = operand(right_expr, ctx, f"'{op}'")
        if left.failed or right.failed:
            return _ERROR
        if left.node is None and right.node is None:
            return _Value(Type(series_type.kind, False), const=_fold(op_kind, op, left.const, right.const))
        tf = self.finest([left, right], ctx)
        a, b = self.as_node(left, tf), self.as_node(right, tf)
        warmup = max(self.warmups[a], self.warmups[b])
        return _Value(series_type, self.node(op_kind, tf, (op, a, b), series_type, warmup), tf=tf)

    def name(self, expr: ast.Name, ctx: str) -> _Value:
        name = expr.id
        if name in self.inputs:
            value = self.inputs[name]
            return _Value(BOOL_CONST if isinstance(value, bool) else NUMBER_CONST, const=value)
        if name in self.features:
            return self.feature(name, expr.span, ctx)
        if name in SERIES_NAMES:
            return _Value(NUMBER, self.node("column", ctx, (name,), NUMBER, 0), tf=ctx)
        if name in self.registry.feeds:
            members = ", ".join(sorted(self.registry.feeds[name].members())) or "see docs/dsl.md"
            return self.error(
                "DSL011", f"feed '{name}' needs a member, e.g. {name}.<name> ({members})", expr.span
            )
        if name in self.registry.functions:
            return self.error("DSL003", f"'{name}' is a function: call it, e.g. {name}(...)", expr.span)
        known = [*self.inputs, *self.features, *SERIES_NAMES, *self.registry.feeds]
        return self.error("DSL003", f"unknown name '{name}'{did_you_mean(name, known)}", expr.span)

    def feature(self, name: str, span: Span, ctx: str) -> _Value:
        if name in self._visiting:
            chain = " -> ".join([*self._visiting[self._visiting.index(name) :], name])
            return self.error("DSL010", f"feature '{name}' refers to itself ({chain})", span)
        key = (name, ctx)
        if key in self._feature_values:
            return self._feature_values[key]
        self._visiting.append(name)
        if ctx == self.base:
            value = self.visit(self.features[name], ctx)
        else:
            # Errors inside the feature itself are reported once, from its own (base) check.
            reported = len(self.diagnostics)
            value = self.visit(self.features[name], ctx)
            if len(self.diagnostics) > reported:
                first = self.diagnostics[reported].message
                del self.diagnostics[reported:]
                value = self.error("DSL008", f"feature '{name}' cannot be evaluated @{ctx}: {first}", span)
        self._visiting.pop()
        self._feature_values[key] = value
        return value

    def history(self, expr: ast.History, ctx: str) -> _Value:
        value = self.visit(expr.value, ctx)
        offset = self.visit(expr.offset, ctx)
        if value.failed or offset.failed:
            return _ERROR
        tf = value.tf or ctx
        bars = self.bar_count(offset, expr.offset.span, tf, "a history offset")
        if bars is None:
            return _ERROR
        if bars < 0:
            return self.error(
                "DSL006",
                f"'[{bars}]' would read {-bars} candle(s) into the future; history offsets look back and must be >= 0",
                expr.offset.span,
            )
        if value.duration is not None:
            return self.error("DSL005", "a duration has no history", expr.value.span)
        if value.node is None or bars == 0:
            return value
        assert value.type is not None
        node = self.node("shift", value.tf, (value.node, bars), value.type, self.warmups[value.node] + bars)
        return _Value(value.type, node, tf=value.tf)

    def bar_count(self, value: _Value, span: Span, tf: str, what: str) -> int | None:
        """An integer count of candles from a constant number or a duration (converted on ``tf``)."""
        if value.duration is not None:
            seconds, step = parse_duration(value.duration), _seconds(tf)
            if seconds % step:
                self.error("DSL008", f"{value.duration} is not a whole number of {tf} candles", span)
                return None
            return seconds // step
        if value.node is not None or value.type is None or value.type.kind is not Kind.NUMBER:
            self.error("DSL005", f"{what} must be a constant whole number, got {value.type}", span)
            return None
        if isinstance(value.const, bool) or not float(value.const).is_integer():
            self.error("DSL005", f"{what} must be a whole number, got {value.const}", span)
            return None
        return int(value.const)

    def at_timeframe(self, expr: ast.AtTimeframe, ctx: str) -> _Value:
        tf = expr.timeframe
        if tf not in SUPPORTED_TIMEFRAMES:
            return self.error(
                "DSL008",
                f"unsupported timeframe '{tf}'{did_you_mean(tf, SUPPORTED_TIMEFRAMES)} (supported: {', '.join(SUPPORTED_TIMEFRAMES)})",
                expr.timeframe_span,
            )
        if _seconds(tf) < _seconds(self.base) or _seconds(tf) % _seconds(self.base):
            return self.error(
                "DSL008",
                f"timeframe {tf} cannot be built from this strategy's {self.base} candles (it must be a multiple of {self.base})",
                expr.timeframe_span,
            )
        if _seconds(tf) < _seconds(ctx):
            return self.error(
                "DSL008",
                f"@{tf} inside an @{ctx} expression would need lower-timeframe data",
                expr.timeframe_span,
            )
        return self.visit(expr.value, tf)

    def member(self, expr: ast.Member, ctx: str) -> _Value:
        if isinstance(expr.value, ast.Call):
            return self.call(expr.value, ctx, member=(expr.attr, expr.attr_span))
        path: list[str] = [expr.attr]
        root: ast.Expr = expr.value
        while isinstance(root, ast.Member):
            path.insert(0, root.attr)
            root = root.value
        if (
            isinstance(root, ast.Name)
            and root.id in self.registry.feeds
            and root.id not in self.inputs
            and root.id not in self.features
        ):
            feed = self.registry.feeds[root.id]
            try:
                type_ = feed.resolve(tuple(path))
            except KeyError as exc:
                message = exc.args[0] if exc.args else f"unknown member {'.'.join(path)}"
                return self.error("DSL011", f"{root.id}.{'.'.join(path)}: {message}", expr.span)
            node = self.node("feed", ctx, (root.id, tuple(path)), type_, feed.warmup)
            return _Value(type_, node, tf=ctx)
        if (
            isinstance(root, ast.Name)
            and root.id not in self.inputs
            and root.id not in self.features
            and root.id not in SERIES_NAMES
        ):
            known = [*self.registry.feeds, *self.inputs, *self.features]
            return self.error("DSL011", f"unknown feed '{root.id}'{did_you_mean(root.id, known)}", root.span)
        return self.error(
            "DSL011",
            f"'.{expr.attr}' needs a function with several outputs or a feed before it",
            expr.attr_span,
        )

    # ----- calls -------------------------------------------------------------------------------
    def call(self, expr: ast.Call, ctx: str, member: tuple[str, Span] | None) -> _Value:
        spec = self.registry.lookup(expr.func)
        if spec is None:
            if expr.func in SERIES_NAMES or expr.func in self.inputs or expr.func in self.features:
                return self.error("DSL002", f"'{expr.func}' is not a function", expr.name_span)
            return self.error(
                "DSL002", f"unknown function '{expr.func}'{self.registry.suggest(expr.func)}", expr.name_span
            )
        bound = self.bind(spec, expr)
        if bound is None:
            return _ERROR
        values = {name: self.visit(arg, ctx) for name, arg in bound.items()}
        if any(v.failed for v in values.values()):
            return _ERROR
        series_values = [v for v in values.values() if v.node is not None]
        tf = self.finest(series_values, ctx)
        args: list[tuple[str, str, Any]] = []
        warmup_args: dict[str, Any] = {}
        upstream = 0
        ok = True
        for param in spec.params:
            if param.name in values:
                value, span = values[param.name], bound[param.name].span
            elif isinstance(param.default, Column):
                value = _Value(NUMBER, self.node("column", tf, (param.default.name,), NUMBER, 0), tf=tf)
                span = expr.span
            else:
                warmup_args[param.name] = param.default
                args.append((param.name, "value", param.default))
                continue
            checked = self.argument(spec, param, value, span, tf)
            if checked is None:
                ok = False
                continue
            kind, payload = checked
            args.append((param.name, kind, payload))
            if kind == "node":
                upstream = max(upstream, self.warmups[payload])
            else:
                warmup_args[param.name] = payload
        if not ok:
            return _ERROR
        # Warm-ups that depend on the candle size (a session-anchored VWAP) read it from "_timeframe".
        warmup_args["_timeframe"] = tf
        try:
            own = int(spec.warmup(warmup_args))
        except Exception as exc:  # a registry bug must not hide the user's other errors
            return self.error("DSL009", f"{spec.name}(): cannot compute warm-up: {exc}", expr.span)
        returns = spec.returns
        result_type = returns if isinstance(returns, Type) else None
        call_node = self.node("call", tf, (spec.name, tuple(args)), result_type or NUMBER, upstream + own)
        outputs = spec.outputs
        if outputs is None:
            if member is not None:
                return self.error(
                    "DSL011", f"{spec.name}() has a single output; remove '.{member[0]}'", member[1]
                )
            return _Value(result_type, call_node, tf=tf)
        if member is None:
            if spec.default_output is None:
                names = ", ".join(outputs)
                return self.error(
                    "DSL011", f"{spec.name}() has several outputs: pick one with .name ({names})", expr.span
                )
            chosen = spec.default_output
        else:
            chosen = member[0]
            if chosen not in outputs:
                names = ", ".join(outputs)
                return self.error(
                    "DSL011",
                    f"{spec.name}() has no output '{chosen}'{did_you_mean(chosen, outputs)} (outputs: {names})",
                    member[1],
                )
        type_ = outputs[chosen]
        return _Value(
            type_, self.node("output", tf, (call_node, chosen), type_, self.warmups[call_node]), tf=tf
        )

    def bind(self, spec: FunctionSpec, expr: ast.Call) -> dict[str, ast.Expr] | None:
        positional = [p for p in spec.params if not p.keyword_only]
        bound: dict[str, ast.Expr] = {}
        ok = True
        if len(expr.args) > len(positional):
            names = ", ".join(p.name for p in positional)
            extra = expr.args[len(positional)]
            self.error(
                "DSL004",
                f"{spec.name}() takes at most {len(positional)} positional argument(s) ({names}), got {len(expr.args)}",
                extra.span,
            )
            ok = False
        for param, arg in zip(positional, expr.args, strict=False):
            bound[param.name] = arg
        names = [p.name for p in spec.params]
        for keyword in expr.keywords:
            if keyword.name not in names:
                self.error(
                    "DSL004",
                    f"{spec.name}() has no argument '{keyword.name}'{did_you_mean(keyword.name, names)} (arguments: {', '.join(names)})",
                    keyword.span,
                )
                ok = False
            elif keyword.name in bound:
                self.error("DSL004", f"{spec.name}() got argument '{keyword.name}' twice", keyword.span)
                ok = False
            else:
                bound[keyword.name] = keyword.value
        missing = [p.name for p in spec.params if p.required and p.name not in bound]
        if missing and ok:
            self.error(
                "DSL004",
                f"{spec.name}() is missing argument(s): {', '.join(missing)} — {spec.signature()}",
                expr.span,
            )
            ok = False
        return bound if ok else None

    def argument(
        self, spec: FunctionSpec, param: Param, value: _Value, span: Span, tf: str
    ) -> tuple[str, Any] | None:
        """Check one argument against its parameter: ("node", id) for series, ("value", constant) otherwise."""
        where = f"argument '{param.name}' of {spec.name}()"
        if value.duration is not None:
            if param.type.kind is not Kind.NUMBER or not param.integer:
                self.error("DSL005", f"{where} does not take a duration", span)
                return None
            count = self.bar_count(value, span, tf, where)
            return None if count is None else self.constant(spec, param, count, span)
        assert value.type is not None
        if not param.type.accepts(value.type):
            expected = str(param.type) if param.type.series else f"a {param.type}"
            self.error("DSL005", f"{where} must be {expected}, got {value.type}", span)
            return None
        if value.node is not None:
            return "node", self.align(value, tf)
        if param.type.series:
            return "node", self.node("const", None, (value.const,), value.type, 0)
        return self.constant(spec, param, value.const, span)

    def constant(self, spec: FunctionSpec, param: Param, const: Any, span: Span) -> tuple[str, Any] | None:
        where = f"argument '{param.name}' of {spec.name}()"
        if param.integer:
            if isinstance(const, bool) or not float(const).is_integer():
                self.error("DSL009", f"{where} must be a whole number, got {const}", span)
                return None
            const = int(const)
        if param.min is not None and const < param.min:
            self.error("DSL009", f"{where} must be >= {_plain(param.min)}, got {const}", span)
            return None
        if param.max is not None and const > param.max:
            self.error("DSL009", f"{where} must be <= {_plain(param.max)}, got {const}", span)
            return None
        if param.choices is not None and const not in param.choices:
            hint = did_you_mean(str(const), param.choices)
            shown = ", ".join(param.choices[:12]) + (", ..." if len(param.choices) > 12 else "")
            self.error("DSL009", f"{where}: unknown value {const!r}{hint} (one of: {shown})", span)
            return None
        return "value", const


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _fold(op_kind: str, op: str, a: Any, b: Any) -> Any:
    """Constant folding, so that `length=fast * 2` is a constant the function can use."""
    if op_kind == "logical":
        return (a and b) if op == "and" else (a or b)
    if op_kind == "compare":
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "==": a == b, "!=": a != b}[op]
    if op == "/":
        return a / b if b else math.nan
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    return result


def _parse_all(sources: Mapping[str, Source], diagnostics: list[Diagnostic]) -> dict[str, ast.Expr]:
    parsed: dict[str, ast.Expr] = {}
    for name, source in sources.items():
        try:
            parsed[name] = parse_expression(source)
        except DiagnosticError as exc:
            diagnostics.extend(exc.diagnostics)
    return parsed


def compile_rules(
    features: Mapping[str, Source],
    rules: Mapping[str, tuple[Source, Type | None]],
    inputs: Mapping[str, InputValue],
    registry: Registry,
    timeframe: str,
) -> Plan:
    """Compile a strategy's features and rules into one shared Plan; raises DiagnosticError with every error."""
    diagnostics: list[Diagnostic] = []
    if timeframe not in SUPPORTED_TIMEFRAMES:
        raise DiagnosticError([Diagnostic("DSL008", f"unsupported timeframe '{timeframe}'")])
    feature_exprs = _parse_all(features, diagnostics)
    rule_sources = {name: source for name, (source, _) in rules.items()}
    rule_exprs = _parse_all(rule_sources, diagnostics)
    builder = _Builder(registry, timeframe, inputs, feature_exprs)
    outputs: dict[str, int] = {}
    output_types: dict[str, Type] = {}
    warmup = 0

    def finish(name: str, value: _Value, expected: Type | None, span: Span) -> None:
        nonlocal warmup
        if value.failed:
            return
        if value.duration is not None:
            builder.error("DSL005", "a duration alone is not a value; use it after '@' or as a length", span)
            return
        assert value.type is not None
        if expected is not None and value.type.kind is not expected.kind:
            need = "a condition (true/false)" if expected.kind is Kind.BOOL else "a number"
            builder.error("DSL005", f"'{name}' must be {need}, got {value.type}", span)
            return
        if value.type.kind is Kind.STRING:
            builder.error("DSL005", f"'{name}' must be a number or a condition, got a string", span)
            return
        node = builder.as_node(value, timeframe)
        warmup = max(warmup, builder.warmups[node])
        outputs[name] = node
        output_types[name] = Type(value.type.kind, True)

    for name, expr in feature_exprs.items():
        finish(name, builder.feature(name, expr.span, timeframe), None, expr.span)
    for name, expr in rule_exprs.items():
        finish(name, builder.visit(expr, timeframe), rules[name][1], expr.span)
    if diagnostics or builder.diagnostics:
        ordered = sorted(
            diagnostics + builder.diagnostics,
            key=lambda d: (d.span.file, d.span.line, d.span.col) if d.span else ("", 0, 0),
        )
        raise DiagnosticError(ordered)
    return Plan(timeframe, tuple(builder.nodes), outputs, output_types, warmup, registry)


def compile_expression(
    source: Source | str,
    registry: Registry,
    timeframe: str,
    inputs: Mapping[str, InputValue] | None = None,
) -> Plan:
    """Compile a single expression into a Plan whose only output is ``value`` (used by `engine eval`)."""
    if isinstance(source, str):
        source = Source(source)
    # No expected type: `engine eval` accepts a number or a condition.
    return compile_rules({}, {"value": (source, None)}, inputs or {}, registry, timeframe)
