"""The front door: load a strategy or a bot (raising every diagnostic at once), or validate files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dsl import Diagnostic, DiagnosticError, Plan, Registry, Span
from dsl.errors import did_you_mean
from engine.config._bot import Bot
from engine.config._bot_check import apply_overlay
from engine.config._session import Session, detect_kind
from engine.config._strategy import Strategy
from engine.config._strategy_check import InputValue, alert_column, alert_score_column, rule_name
from engine.config._yaml import YamlDocument

__all__ = [
    "LoadedBot",
    "LoadedStrategy",
    "ValidationReport",
    "detect_kind",
    "load_bot",
    "load_strategy",
    "validate_files",
    "validate_report",
]


@dataclass(frozen=True)
class LoadedStrategy:
    """A valid strategy, compiled with its inputs (defaults, then a bot's params).

    ``plan.evaluate(candles)`` returns one column per feature (by its name) and per rule:
    ``entry_long``/``entry_short``, ``exit_long``/``exit_short``, ``confirm_<side>_<n>`` and
    ``score_<side>_<n>`` (1-based, in file order), ``stop_loss``/``take_profit`` when those are
    expressions (price distances), and ``size`` when the strategy has one. Percentage stops are ratios
    in ``model.stops``.
    """

    path: Path
    file: str  # as shown in messages
    text: str
    model: Strategy
    inputs: Mapping[str, InputValue]
    plan: Plan

    @property
    def timeframe(self) -> str:
        return self.model.timeframe

    @property
    def warmup(self) -> int:
        return self.plan.warmup

    def entry_column(self, side: str) -> str | None:
        return rule_name("entry", side) if getattr(self.model.entry, side) is not None else None

    def exit_column(self, side: str) -> str | None:
        return rule_name("exit", side) if getattr(self.model.exit, side) is not None else None

    def fast_exit_column(self, side: str) -> str | None:
        return rule_name("fast_exit", side) if getattr(self.model.fast_exit, side) is not None else None

    def confirm_columns(self, side: str) -> tuple[str, ...]:
        return tuple(rule_name("confirm", side, i) for i in range(len(getattr(self.model.confirm, side))))

    def score_columns(self, side: str) -> tuple[tuple[str, float], ...]:
        """(column, weight) per score signal of ``side``; the threshold is ``model.score.<side>.threshold``."""
        score = getattr(self.model.score, side)
        if score is None:
            return ()
        return tuple((rule_name("score", side, i), s.weight) for i, s in enumerate(score.signals))

    def alert_columns(self) -> tuple[tuple[str, str, str | None], ...]:
        """(name, condition column, score column or None) per alert, in file order."""
        return tuple(
            (name, alert_column(name), alert_score_column(name) if spec.score is not None else None)
            for name, spec in self.model.alerts.items()
        )

    def stop_column(self, name: str) -> str | None:
        """'stop_loss' / 'take_profit' when that stop is an expression (a price distance column)."""
        return name if isinstance(getattr(self.model.stops, name), str) else None

    def size_column(self) -> str | None:
        """'size' when the strategy sizes its entries (a fraction of the stake per candle)."""
        return "size" if self.model.size is not None else None


@dataclass(frozen=True)
class LoadedBot:
    """A valid bot with its profile applied and its strategy compiled with the bot's params."""

    path: Path
    file: str
    text: str
    model: Bot
    profile: str | None
    strategy: LoadedStrategy


@dataclass
class ValidationReport:
    """What ``engine validate`` prints: every diagnostic, the files checked and their text."""

    files: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def summary(self) -> str:
        errors = [d for d in self.diagnostics if d.severity == "error"]
        total = len(self.files)
        if not errors:
            return f"{total} file{'s' if total != 1 else ''} OK"
        bad = len({d.span.file if d.span else "" for d in errors})
        return f"{len(errors)} error{'s' if len(errors) != 1 else ''} in {bad} of {total} file{'s' if total != 1 else ''}"


def _unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str, Span | None]] = set()
    out: list[Diagnostic] = []
    for d in diagnostics:
        key = (d.code, d.message, d.span)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _sorted(diagnostics: Iterable[Diagnostic], own: str) -> list[Diagnostic]:
    """The file's own diagnostics first, by position; then those of files it refers to."""

    def key(d: Diagnostic) -> tuple[bool, str, int, int]:
        if d.span is None:
            return (False, "", 0, 0)
        return (d.span.file != own, d.span.file, d.span.line, d.span.col)

    return sorted(diagnostics, key=key)


def load_strategy(
    path: str | Path,
    params: Mapping[str, InputValue] | None = None,
    *,
    registry: Registry | None = None,
    relative_to: Path | None = None,
) -> LoadedStrategy:
    """Load, validate and compile a strategy, with ``params`` overriding its inputs' defaults.

    Raises :class:`DiagnosticError` with every problem found (YAML, schema, meaning, DSL).
    """
    return _load_strategy(Session(registry, relative_to), Path(path), params or {})


class StrategyCompiler:
    """One strategy file compiled with many parameter sets (optimisation trials): the file is read and
    checked once; each :meth:`compile` only builds the plan for its params."""

    def __init__(
        self,
        path: str | Path,
        *,
        registry: Registry | None = None,
        relative_to: Path | None = None,
        max_plans: int = 256,
    ):
        self.path = Path(path)
        self._registry = registry
        self._relative_to = relative_to
        self._max_plans = max_plans
        self._session = Session(registry, relative_to)

    def compile(self, params: Mapping[str, InputValue] | None = None) -> LoadedStrategy:
        """Like :func:`load_strategy` with ``params``; raises DiagnosticError the same way."""
        # The session keeps every plan it compiled; start afresh now and then to bound memory.
        if len(self._session.compiled) > self._max_plans:
            self._session = Session(self._registry, self._relative_to)
        return _load_strategy(self._session, self.path, params or {})


def _document_of_kind(session: Session, path: Path, expected: str) -> YamlDocument:
    """The file's document when it is a ``expected`` file; otherwise every problem found, as an error."""
    document = session.document(path)
    kind, problems = detect_kind(document)
    if kind == expected:
        return document
    if kind is not None:
        problems = [
            Diagnostic("CFG002", f"this is a {kind} file, not a {expected}", Span.point(document.path, 1, 1))
        ]
    raise DiagnosticError(_unique([*document.diagnostics, *problems]))


def _load_strategy(session: Session, path: Path, params: Mapping[str, InputValue]) -> LoadedStrategy:
    document = _document_of_kind(session, path, "strategy")
    analysis = session.strategy(path)
    diagnostics = [*document.diagnostics, *analysis.diagnostics]
    overrides: dict[str, InputValue] = {}
    for name, value in params.items():
        info = analysis.inputs.get(name)
        problem = (
            f"unknown parameter '{name}'{did_you_mean(name, analysis.inputs)}"
            if info is None
            else info.check(value)
        )
        if problem is not None:
            diagnostics.append(Diagnostic("CFG008", problem, Span.point(document.path, 1, 1)))
        else:
            assert info is not None
            overrides[name] = int(value) if info.kind == "int" else value
    plan, errors = session.compile(path, overrides)
    diagnostics.extend(errors)
    if diagnostics or plan is None or analysis.model is None:
        raise DiagnosticError(_unique(diagnostics) or [Diagnostic("CFG002", "invalid strategy", None)])
    values = {name: overrides.get(name, info.default) for name, info in analysis.inputs.items()}
    return LoadedStrategy(path, document.path, document.text, analysis.model, values, plan)


def load_bot(
    path: str | Path,
    profile: str | None = None,
    *,
    registry: Registry | None = None,
    relative_to: Path | None = None,
) -> LoadedBot:
    """Load a bot with ``profile`` applied, and its strategy compiled with the bot's params.

    Raises :class:`DiagnosticError` with every problem found in the bot and its strategy.
    """
    session = Session(registry, relative_to)
    path = Path(path)
    document = _document_of_kind(session, path, "bot")
    root = document.root
    assert root is not None
    diagnostics = list(document.diagnostics)
    variant = root
    if profile is not None:
        profiles = root.get("profiles")
        names = list(profiles.items) if profiles is not None and profiles.kind == "map" else []
        if profile not in names:
            known = f" (profiles: {', '.join(names)})" if names else " (this bot has no profiles)"
            anchor = root.key_node("profiles") or root.key_node("bot")
            assert anchor is not None
            raise DiagnosticError(
                [
                    Diagnostic(
                        "CFG010",
                        f"unknown profile '{profile}'{did_you_mean(profile, names)}{known}",
                        anchor.span(document.path),
                    )
                ]
            )
        overlay = profiles.get(profile)  # type: ignore[union-attr]
        assert overlay is not None
        if overlay.kind == "map":
            variant = apply_overlay(root, overlay)
    model, strategy_path, params, found = session.bot_variant(path, document, variant, profile)
    diagnostics.extend(found)
    if diagnostics or model is None or strategy_path is None:
        raise DiagnosticError(_unique(diagnostics) or [Diagnostic("CFG002", "invalid bot", None)])
    strategy = _load_strategy(session, strategy_path, params)
    return LoadedBot(path, document.path, document.text, model, profile, strategy)


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            out.append(path)
    return out


def validate_report(
    paths: Sequence[str | Path], *, registry: Registry | None = None, relative_to: Path | None = None
) -> ValidationReport:
    """Check every file fully (a directory means its *.yaml files); never raises for bad input."""
    session = Session(registry, relative_to)
    report = ValidationReport()
    collected: list[Diagnostic] = []
    checked: list[Path] = []
    for path in _expand(paths):
        if path.resolve() in (p.resolve() for p in checked):
            continue
        checked.append(path)
        document = session.document(path)
        kind, problems = detect_kind(document)
        found = [*document.diagnostics, *problems]
        if kind == "strategy":
            found.extend(session.strategy(path).diagnostics)
        elif kind == "bot":
            found = session.check_bot(path)
        elif kind == "model":
            found.extend(session.model(path).diagnostics)
        elif kind == "feeds":
            from engine.config._feeds import check_feeds_document

            found.extend(check_feeds_document(document, path).diagnostics)
        elif kind == "sentiment":
            from engine.sentiment.config import check_sentiment_document

            found.extend(check_sentiment_document(document)[1])
        collected.extend(_sorted(_unique(found), document.path))
    report.diagnostics = _unique(collected)
    for document in session.documents.values():
        report.files.append(document.path)
        report.sources[document.path] = document.text
    return report


def validate_files(
    paths: Sequence[str | Path], *, registry: Registry | None = None, relative_to: Path | None = None
) -> list[Diagnostic]:
    """Every diagnostic for ``paths`` (bots, strategies or directories of them); empty when all are valid."""
    return validate_report(paths, registry=registry, relative_to=relative_to).diagnostics
