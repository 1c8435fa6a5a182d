"""One loading or validation pass: each file is read, and each strategy analysed, once; bots are
checked as a base document and once per profile overlay."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from dsl import Diagnostic, Plan, Registry, Span
from dsl.errors import did_you_mean
from engine.config._bot import Bot
from engine.config._bot_check import apply_overlay, check_bot_meaning, check_params
from engine.config._errors import validation_diagnostics
from engine.config._model_check import ModelAnalysis, analyse_model
from engine.config._strategy_check import InputValue, StrategyAnalysis, analyse_strategy, compile_strategy
from engine.config._yaml import YamlDocument, YamlNode, read_yaml_file

__all__ = ["Session", "detect_kind", "with_note"]


def _default_registry(path: Path | None = None) -> Registry:
    """The registry a file compiles against: its project's (built-in functions plus the project's
    feeds, models and sentiment namespaces), found from the file's folder."""
    from engine.config._project import find_project_root, project_registry

    return project_registry(find_project_root(path if path is not None else Path.cwd()))


def display_path(path: Path, relative_to: Path) -> str:
    """How a file is named in messages: relative to ``relative_to`` when inside it, else absolute."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(relative_to.resolve()).as_posix()
    except ValueError:
        return str(resolved)


def detect_kind(document: YamlDocument) -> tuple[str | None, list[Diagnostic]]:
    """'strategy', 'bot', 'model' or 'feeds' (a feeds.yaml) from the top-level keys, or None with the
    reason."""
    root, file = document.root, document.path
    if document.diagnostics and root is None:
        return None, []
    here = Span.point(file, 1, 1)
    if root is None or (root.kind == "scalar" and root.value is None):
        return None, [
            Diagnostic(
                "CFG003",
                "file is empty: a strategy starts with 'strategy: NAME', a bot with 'bot: NAME'",
                here,
            )
        ]
    if root.kind != "map":
        what = "a list" if root.kind == "seq" else "a single value"
        return None, [
            Diagnostic(
                "CFG002",
                f"expected key: value lines at the top level (a strategy or a bot), got {what}",
                root.span(file),
            )
        ]
    if Path(file).name == "sentiment.yaml":  # news sources (engine/sentiment); it may hold a `model:` key
        return "sentiment", []
    if "bot" in root.items:
        return "bot", []
    if "strategy" in root.items:
        return "strategy", []
    if "model" in root.items:
        return "model", []
    if root.items and set(root.items) <= {"feeds", "services", "alerts"}:
        return "feeds", []
    for key, (key_node, _) in root.items.items():
        hint = did_you_mean(key, ("strategy", "bot"))
        if hint:
            return None, [Diagnostic("CFG003", f"unknown top-level key '{key}'{hint}", key_node.span(file))]
    return None, [
        Diagnostic(
            "CFG003",
            "cannot tell what this file is: a strategy needs a top-level 'strategy:' key, a bot a 'bot:' key",
            here,
        )
    ]


class Session:
    """One validation or load: documents and strategy analyses are read once per file."""

    def __init__(self, registry: Registry | None, relative_to: Path | None):
        self._registry = registry
        self.relative_to = relative_to or Path.cwd()
        self.documents: dict[Path, YamlDocument] = {}
        self.analyses: dict[Path, StrategyAnalysis] = {}
        self.models: dict[Path, ModelAnalysis] = {}
        self.compiled: dict[
            tuple[Path, tuple[tuple[str, InputValue], ...]], tuple[Plan | None, list[Diagnostic]]
        ] = {}

    def registry_for(self, path: Path) -> Registry:
        """The given registry, else the project registry of ``path``'s folder."""
        return self._registry if self._registry is not None else _default_registry(path)

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = _default_registry()
        return self._registry

    def document(self, path: Path) -> YamlDocument:
        key = path.resolve()
        if key not in self.documents:
            self.documents[key] = read_yaml_file(path, display_path(path, self.relative_to))
        return self.documents[key]

    def strategy(self, path: Path) -> StrategyAnalysis:
        key = path.resolve()
        if key not in self.analyses:
            self.analyses[key] = analyse_strategy(self.document(path), self.registry_for(path))
        return self.analyses[key]

    def model(self, path: Path) -> ModelAnalysis:
        key = path.resolve()
        if key not in self.models:
            self.models[key] = analyse_model(self.document(path), self.registry)
        return self.models[key]

    def compile(
        self, path: Path, overrides: Mapping[str, InputValue]
    ) -> tuple[Plan | None, list[Diagnostic]]:
        analysis = self.strategy(path)
        changed = {
            k: v for k, v in overrides.items() if k in analysis.inputs and analysis.inputs[k].default != v
        }
        if not changed:
            return analysis.plan, []
        key = (path.resolve(), tuple(sorted(changed.items())))
        if key not in self.compiled:
            self.compiled[key] = compile_strategy(analysis, self.registry_for(path), changed)
        return self.compiled[key]

    # ----- bots -----------------------------------------------------------------------------------
    def bot_variant(
        self, bot_path: Path, document: YamlDocument, root: YamlNode, profile: str | None
    ) -> tuple[Bot | None, Path | None, dict[str, InputValue], list[Diagnostic]]:
        """Check one variant of a bot (the base document or a profile applied)."""
        file = document.path
        out: list[Diagnostic] = []
        model: Bot | None = None
        try:
            model = Bot.model_validate(root.to_python())
        except ValidationError as exc:
            out.extend(validation_diagnostics(exc, root, file, Bot))
        if model is not None:
            out.extend(check_bot_meaning(model, root, file))
        reference = root.get("strategy")
        if reference is None or not isinstance(reference.value, str) or not reference.value.strip():
            return model, None, {}, out
        path = bot_path.parent / reference.value.strip()
        if path.suffix not in (".yaml", ".yml"):
            # Only YAML files are read, so a bot cannot make the engine quote lines of other files.
            message = (
                f"cannot use strategy file '{reference.value}': a strategy file name ends in .yaml or .yml"
            )
            return model, None, {}, [*out, Diagnostic("CFG005", message, reference.span(file))]
        target = self.document(path)
        kind, _ = detect_kind(target)
        if target.root is None and target.diagnostics and target.diagnostics[0].code == "CFG005":
            reason = target.diagnostics[0].message
            looked = f" (looked for {target.path})" if target.path != reference.value.strip() else ""
            out.append(
                Diagnostic(
                    "CFG005",
                    f"cannot use strategy file '{reference.value}': {reason}{looked}",
                    reference.span(file),
                )
            )
            return model, None, {}, out
        if kind == "bot":
            out.append(
                Diagnostic(
                    "CFG005", f"'{reference.value}' is a bot file, not a strategy", reference.span(file)
                )
            )
            return model, None, {}, out
        if kind is None:
            if target.diagnostics or target.root is not None:
                # The strategy's own errors are reported under its name; say here why the bot cannot run.
                out.append(
                    Diagnostic(
                        "CFG005",
                        f"strategy file '{reference.value}' is not a valid strategy (see the errors in {target.path})",
                        reference.span(file),
                    )
                )
                out.extend(target.diagnostics)
                out.extend(detect_kind(target)[1])
            return model, None, {}, out
        analysis = self.strategy(path)
        out.extend(analysis.diagnostics)
        params, problems = check_params(root, file, analysis.inputs, target.path)
        out.extend(problems)
        plan_errors = self.compile(path, params)[1]
        note = f"with the params of {file}" + (f" (profile '{profile}')" if profile else "")
        known = set(analysis.diagnostics)
        out.extend(d if d in known else with_note(d, note) for d in plan_errors)
        return model, path, params, out

    def check_bot(self, path: Path) -> list[Diagnostic]:
        """The base bot and every profile applied to it."""
        document = self.document(path)
        root = document.root
        assert root is not None
        _, _, _, base = self.bot_variant(path, document, root, None)
        out = list(document.diagnostics) + base
        # A problem inside an overlay is already reported by the base check (under profiles.NAME).
        seen = {(d.code, d.span) for d in base}
        profiles = root.get("profiles")
        if profiles is not None and profiles.kind == "map":
            for name, (_, overlay) in profiles.items.items():
                if overlay.kind != "map":
                    continue  # reported by the schema check of the base document
                merged = apply_overlay(root, overlay)
                _, _, _, found = self.bot_variant(path, document, merged, name)
                for diagnostic in found:
                    if (diagnostic.code, diagnostic.span) not in seen:
                        seen.add((diagnostic.code, diagnostic.span))
                        out.append(with_note(diagnostic, f"in profile '{name}'"))
        return out


def with_note(diagnostic: Diagnostic, note: str) -> Diagnostic:
    if note in diagnostic.notes:
        return diagnostic
    return Diagnostic(
        diagnostic.code, diagnostic.message, diagnostic.span, diagnostic.severity, (*diagnostic.notes, note)
    )
