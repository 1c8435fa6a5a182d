"""Text -> AST. LALR parsing with Lark; positions are mapped back into the file the text came from."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from importlib import resources

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from dsl import ast
from dsl.errors import Diagnostic, DiagnosticError, Span

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Source", "parse_expression"]

MAX_LENGTH = 10_000
MAX_DEPTH = 100

_DEFAULT_SEGMENTS = ((0, 1, 1),)


@dataclass(frozen=True, slots=True)
class Source:
    """DSL text and where it sits in its file.

    ``segments`` are ``(offset in text, file line, file column)`` triples, one per run of text that
    continues on a single file line (a one-line YAML scalar has one; a block scalar one per line).
    """

    text: str
    file: str = "<expr>"
    segments: tuple[tuple[int, int, int], ...] = _DEFAULT_SEGMENTS

    def __post_init__(self) -> None:
        if self.segments == _DEFAULT_SEGMENTS and "\n" in self.text:
            segments, offset = [], 0
            for number, line in enumerate(self.text.split("\n"), start=1):
                segments.append((offset, number, 1))
                offset += len(line) + 1
            object.__setattr__(self, "segments", tuple(segments))

    def position(self, offset: int) -> tuple[int, int]:
        """File (line, column) of a character offset in the text."""
        starts = [s[0] for s in self.segments]
        index = max(0, bisect_right(starts, offset) - 1)
        start, line, col = self.segments[index]
        return line, col + (offset - start)

    def span(self, start: int, end: int) -> Span:
        line, col = self.position(start)
        if end <= start:
            return Span(self.file, line, col, line, col + 1)
        end_line, end_col = self.position(end - 1)
        return Span(self.file, line, col, end_line, end_col + 1)

    def whole(self) -> Span:
        return self.span(0, max(len(self.text), 1))


@cache
def _parser() -> Lark:
    grammar = resources.files("dsl").joinpath("grammar.lark").read_text(encoding="utf-8")
    # The basic lexer keeps and/or/not/true/false reserved everywhere (the contextual one would let
    # them through as names where a keyword cannot stand).
    return Lark(grammar, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False)


@v_args(meta=True)
class _Build(Transformer):
    """Builds AST nodes only: no evaluation, no checks, no state beyond the source used for spans."""

    def __init__(self, source: Source):
        super().__init__()
        self._source = source

    def _span(self, meta) -> Span:
        return self._source.span(meta.start_pos, meta.end_pos)

    def _token_span(self, token: Token) -> Span:
        return self._source.span(token.start_pos, token.end_pos)

    def number(self, meta, items):
        text = str(items[0])
        value: int | float = int(text) if text.isdigit() else float(text)
        return ast.Number(value, self._span(meta))

    def percent(self, meta, items):
        text = str(items[0])[:-1]
        value: int | float = int(text) if text.isdigit() else float(text)
        return ast.Percent(value, self._span(meta))

    def duration(self, meta, items):
        return ast.Duration(str(items[0]), self._span(meta))

    def string(self, meta, items):
        return ast.String(str(items[0])[1:-1], self._span(meta))

    def true(self, meta, _items):
        return ast.BoolLiteral(True, self._span(meta))

    def false(self, meta, _items):
        return ast.BoolLiteral(False, self._span(meta))

    def name(self, meta, items):
        return ast.Name(str(items[0]), self._span(meta))

    def keyword(self, meta, items):
        return ast.Keyword(str(items[0]), items[1], self._span(meta))

    def arguments(self, _meta, items):
        return list(items)

    def call(self, meta, items):
        name_token = items[0]
        arguments = items[1] if len(items) > 1 else []
        args = tuple(a for a in arguments if not isinstance(a, ast.Keyword))
        keywords = tuple(a for a in arguments if isinstance(a, ast.Keyword))
        return ast.Call(str(name_token), args, keywords, self._span(meta), self._token_span(name_token))

    def member(self, meta, items):
        return ast.Member(items[0], str(items[1]), self._span(meta), self._token_span(items[1]))

    def history(self, meta, items):
        return ast.History(items[0], items[1], self._span(meta))

    def at_timeframe(self, meta, items):
        return ast.AtTimeframe(items[0], str(items[1]), self._span(meta), self._token_span(items[1]))

    def neg(self, meta, items):
        return ast.Negate(items[1], self._span(meta))

    def not_op(self, meta, items):
        return ast.Not(items[0], self._span(meta))

    def binary(self, meta, items):
        return ast.Binary(str(items[1]), items[0], items[2], self._span(meta))

    def compare(self, meta, items):
        return ast.Compare(str(items[1]), items[0], items[2], self._span(meta))

    def and_op(self, meta, items):
        return ast.Logical("and", items[0], items[1], self._span(meta))

    def or_op(self, meta, items):
        return ast.Logical("or", items[0], items[1], self._span(meta))


# Terminal names as a user would say them, for "expected ..." messages.
_TERMINAL_WORDS = {
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "DURATION": "a duration like 1h",
    "STRING": "a string",
    "NAME": "a name",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "DOT": "'.'",
    "AT": "'@'",
    "EQUAL": "'='",
    "COMP_OP": "a comparison",
    "PLUS": "'+'",
    "MUL_OP": "'*' or '/'",
    "MINUS": "'-'",
    "AND": "'and'",
    "OR": "'or'",
    "NOT": "'not'",
    "TRUE": "'true'",
    "FALSE": "'false'",
    "$END": "the end of the expression",
}


def _expected_words(expected: set[str]) -> str:
    if {"NUMBER", "NAME", "LPAR"} <= set(expected):
        return "a value (number, name, call or '(')"
    ranked = sorted(expected, key=lambda name: (_RANK.index(name) if name in _RANK else len(_RANK), name))
    words = list(dict.fromkeys(_TERMINAL_WORDS.get(name, name) for name in ranked))
    if len(words) > 4:
        words = [*words[:4], "..."]
    return " or ".join(words) if len(words) == 2 else ", ".join(words)


# What a user most likely missed comes first in "expected ..." messages.
_RANK = [
    "RPAR",
    "COMMA",
    "RSQB",
    "$END",
    "COMP_OP",
    "AND",
    "OR",
    "PLUS",
    "MINUS",
    "MUL_OP",
    "NAME",
    "DURATION",
]


def _syntax_error(source: Source, error: UnexpectedInput) -> Diagnostic:
    text = source.text
    if isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        offset = len(text.rstrip())
        expected = getattr(error, "expected", None) or getattr(error, "accepts", None) or set()
        return Diagnostic(
            "DSL001",
            f"unexpected end of expression, expected {_expected_words(set(expected))}",
            source.span(offset, offset + 1),
        )
    if isinstance(error, UnexpectedCharacters):
        offset = error.pos_in_stream
        char = text[offset] if offset < len(text) else ""
        return Diagnostic("DSL001", f"unexpected character {char!r}", source.span(offset, offset + 1))
    assert isinstance(error, UnexpectedToken)
    token = error.token
    start = token.start_pos or 0
    end = token.end_pos or start + 1
    expected = set(error.accepts or error.expected or ())
    message = f"unexpected {str(token)!r}, expected {_expected_words(expected)}"
    if token.type == "COMP_OP" and expected and "COMP_OP" not in expected:
        message = f"comparisons do not chain: write 'a < b and b < c' instead of 'a < b < c' (unexpected {str(token)!r})"
    elif token.type == "EQUAL":
        message = "unexpected '=', did you mean '==' (a comparison)?"
    return Diagnostic("DSL001", message, source.span(start, end))


def _nesting_error(source: Source) -> Diagnostic | None:
    """Depth of brackets, checked before parsing so pathological input fails fast and cleanly."""
    depth = deepest = 0
    deepest_at = 0
    for index, char in enumerate(source.text):
        if char in "([":
            depth += 1
            if depth > deepest:
                deepest, deepest_at = depth, index
        elif char in ")]":
            depth -= 1
    if deepest > MAX_DEPTH // 2:
        return Diagnostic(
            "DSL007",
            f"expression nested too deeply ({deepest} levels of brackets; the limit is {MAX_DEPTH // 2})",
            source.span(deepest_at, deepest_at + 1),
        )
    return None


def _tree_depth(tree: Tree) -> int:
    """Iterative depth of a Lark tree (the transformer recurses, so depth is bounded first)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def parse_expression(source: Source | str) -> ast.Expr:
    """Parse one DSL expression; raises :class:`DiagnosticError` with a DSL001/DSL007 diagnostic."""
    if isinstance(source, str):
        source = Source(source)
    text = source.text
    if not text.strip():
        raise DiagnosticError([Diagnostic("DSL001", "empty expression", source.span(0, 1))])
    if len(text) > MAX_LENGTH:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DSL007",
                    f"expression too long ({len(text)} characters; the limit is {MAX_LENGTH})",
                    source.span(0, 1),
                )
            ]
        )
    nesting = _nesting_error(source)
    if nesting:
        raise DiagnosticError([nesting])
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise DiagnosticError([_syntax_error(source, error)]) from None
    if isinstance(tree, Token):  # a lone atom without a rule cannot happen with this grammar, but stay safe
        raise DiagnosticError([Diagnostic("DSL001", "not an expression", source.whole())])
    depth = _tree_depth(tree)
    if depth > MAX_DEPTH:
        raise DiagnosticError(
            [
                Diagnostic(
                    "DSL007",
                    f"expression nested too deeply ({depth} levels; the limit is {MAX_DEPTH})",
                    source.whole(),
                )
            ]
        )
    return _Build(source).transform(tree)
