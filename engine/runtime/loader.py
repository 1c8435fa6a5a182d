"""Load every bot file of a directory: the valid ones compiled, the invalid ones as error lines.

Used at start-up and by hot reload (which runs it in a worker thread: compiling is CPU work)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dsl.errors import DiagnosticError
from engine.config import LoadedBot, load_bot

__all__ = ["LoadResult", "bot_files", "load_bots"]


@dataclass
class LoadResult:
    bots: dict[str, LoadedBot] = field(default_factory=dict)  # by bot name
    files: dict[Path, str] = field(default_factory=dict)  # bot file -> bot name
    errors: dict[Path, str] = field(default_factory=dict)  # bot file -> "file:line:col: error[...]: ..."


def bot_files(bots_dir: Path) -> list[Path]:
    # `_name.yaml` files are not bots (room for engine-level settings beside them).
    return sorted(p for p in bots_dir.glob("*.y*ml") if not p.name.startswith(("_", ".")))


def load_bots(bots_dir: Path, profile: str | None = None) -> LoadResult:
    result = LoadResult()
    for path in bot_files(bots_dir):
        try:
            bot = load_bot(path, profile)
        except DiagnosticError as error:
            result.errors[path] = "; ".join(d.headline() for d in error.diagnostics if d.severity == "error")
            continue
        except (OSError, ValueError) as error:
            result.errors[path] = f"{path}: error: {error}"
            continue
        name = bot.model.bot
        if name in result.bots:
            result.errors[path] = (
                f"{path}: error: bot name '{name}' is already used by {result.bots[name].file}"
            )
            continue
        result.bots[name] = bot
        result.files[path] = name
    return result
