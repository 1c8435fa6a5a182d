"""Load every bot file of a directory: the valid ones compiled, the invalid ones as error lines.

Used at start-up and by hot reload (which runs it in a worker thread: compiling is CPU work); hot reload
keeps a :class:`BotFileCache` so that only changed files are validated again."""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as _replace
from pathlib import Path

from dsl.errors import DiagnosticError
from engine.config import LoadedBot, load_bot, load_strategy

__all__ = ["BotFileCache", "LoadResult", "bot_files", "load_bots"]


@dataclass
class LoadResult:
    bots: dict[str, LoadedBot] = field(default_factory=dict)  # by bot name
    files: dict[Path, str] = field(default_factory=dict)  # bot file -> bot name
    errors: dict[Path, str] = field(default_factory=dict)  # bot file -> "file:line:col: error[...]: ..."


def bot_files(bots_dir: Path) -> list[Path]:
    # `_name.yaml` files are not bots (room for engine-level settings beside them).
    return sorted(p for p in bots_dir.glob("*.y*ml") if not p.name.startswith(("_", ".")))


def load_bots(bots_dir: Path, profile: str | None = None) -> LoadResult:
    return BotFileCache(profile).load(bots_dir)


@dataclass
class _Cached:
    text: str
    bot: LoadedBot


class BotFileCache:
    """Loads a directory of bot files like :func:`load_bots`, but validates again
    only what changed since the last call: a bot file whose text and strategy text are unchanged is
    reused as it is; bots whose only change is their strategy's text share one compilation per
    (strategy, params). Runs in a worker thread (compiling is CPU work); not for concurrent calls."""

    def __init__(self, profile: str | None = None) -> None:
        self.profile = profile
        self.entries: dict[Path, _Cached] = {}

    def seed(self, loaded: LoadResult) -> None:
        """Remember bots loaded elsewhere (``Runtime.start(loaded)``) so the next load can reuse them."""
        self.entries = {
            path: _Cached(loaded.bots[name].text, loaded.bots[name]) for path, name in loaded.files.items()
        }

    def load(self, bots_dir: Path) -> LoadResult:
        result = LoadResult()
        texts: dict[Path, str | None] = {}  # strategy file -> its text, read once per call
        compiled: dict[tuple[Path, str], LoadedBot | None] = {}
        entries: dict[Path, _Cached] = {}
        for path in bot_files(bots_dir):
            try:
                text = path.read_text()
                bot = self._reuse(path, text, texts, compiled)
                if bot is None:
                    bot = load_bot(path, self.profile)
            except DiagnosticError as error:
                result.errors[path] = "; ".join(
                    d.headline() for d in error.diagnostics if d.severity == "error"
                )
                continue
            except (OSError, ValueError) as error:
                result.errors[path] = f"{path}: error: {error}"
                continue
            entries[path] = _Cached(text, bot)
            name = bot.model.bot
            if name in result.bots:
                result.errors[path] = (
                    f"{path}: error: bot name '{name}' is already used by {result.bots[name].file}"
                )
                continue
            result.bots[name] = bot
            result.files[path] = name
        self.entries = entries
        return result

    def _reuse(
        self,
        path: Path,
        text: str,
        texts: dict[Path, str | None],
        compiled: dict[tuple[Path, str], LoadedBot | None],
    ) -> LoadedBot | None:
        """The cached bot, with its strategy recompiled when only that changed; None: load it afresh."""
        cached = self.entries.get(path)
        if cached is None or cached.text != text:
            return None
        strategy_path = cached.bot.strategy.path.resolve()
        if strategy_path not in texts:
            try:
                texts[strategy_path] = strategy_path.read_text()
            except OSError:
                texts[strategy_path] = None
        strategy_text = texts[strategy_path]
        if strategy_text is None:
            return None  # the full load reports the missing file at the bot's `strategy:` key
        if strategy_text == cached.bot.strategy.text:
            return cached.bot
        params = cached.bot.model.params
        key = (strategy_path, repr(sorted(params.items())))
        if key not in compiled:
            try:
                strategy = load_strategy(cached.bot.strategy.path, params)
            except DiagnosticError:
                # Errors belong at the bot's own keys (params) or the strategy's: the full load says where.
                compiled[key] = None
            else:
                compiled[key] = _replace(cached.bot, strategy=strategy)
        shared = compiled[key]
        if shared is None:
            return None
        return _replace(cached.bot, strategy=shared.strategy)
