"""The editor's "backtest" button: run a bot with the strategy as edited (saved or not) on stored
data, and return the equity curve and trades as plain JSON-ready data for a chart."""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dsl import Diagnostic, DiagnosticError

__all__ = ["EditorBacktest", "backtest_for_editor"]


@dataclass(frozen=True)
class EditorBacktest:
    """``equity``: [[ISO time, equity], ...] (thinned to at most ``max_points``); ``trades``: one dict per
    closed trade (pair, side, open/close time and price, amount, profit, fees, exit_reason)."""

    equity: list[tuple[str, float]]
    trades: list[dict[str, Any]]
    metrics: dict[str, Any]
    start: str
    end: str
    synthetic: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "equity": [list(point) for point in self.equity],
            "trades": self.trades,
            "metrics": self.metrics,
            "start": self.start,
            "end": self.end,
            "synthetic": self.synthetic,
        }


def backtest_for_editor(
    bot_path: str | os.PathLike[str],
    *,
    strategy_text: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    start: Any = None,
    end: Any = None,
    store_root: Any = None,
    max_points: int = 2000,
) -> EditorBacktest:
    """Backtest ``bot_path``; with ``strategy_text``, the bot runs that text instead of its strategy
    file (the files on disk are not touched). Raises DiagnosticError for invalid input or missing data;
    positions in the edited text are reported under the strategy file's name."""
    from engine.backtest.session import run_bot_backtest

    bot_path = Path(bot_path)
    if strategy_text is None:
        run = run_bot_backtest(bot_path, data_dir=data_dir, start=start, end=end, store_root=store_root)
        return _chart(run, max_points)
    with tempfile.TemporaryDirectory(prefix="engine-editor-") as folder:
        bot_copy, names = _stage(bot_path, strategy_text, Path(folder))
        try:
            run = run_bot_backtest(bot_copy, data_dir=data_dir, start=start, end=end, store_root=store_root)
        except DiagnosticError as exc:
            raise DiagnosticError([_renamed(d, names) for d in exc.diagnostics]) from None
        return _chart(run, max_points)


def _stage(bot_path: Path, strategy_text: str, folder: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the bot pointing at the edited strategy text, both in ``folder``."""
    from engine.editor.yaml_edit import EditableFile

    bot = EditableFile.open(bot_path)
    reference = bot.get(("strategy",))
    if not isinstance(reference, str):
        raise DiagnosticError([Diagnostic("EDT004", f"{bot.display}: the bot names no strategy file")])
    original_strategy = (bot_path.parent / reference.strip()).resolve()
    strategy_copy = folder / original_strategy.name
    strategy_copy.write_text(strategy_text, encoding="utf-8")
    bot.set(("strategy",), str(strategy_copy))
    bot_copy = folder / bot_path.name
    bot_copy.write_text(bot.text(), encoding="utf-8")
    names = {
        str(strategy_copy.resolve()): _shown(original_strategy),
        str(bot_copy.resolve()): bot.display,
    }
    return bot_copy, names


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _renamed(diagnostic: Diagnostic, names: dict[str, str]) -> Diagnostic:
    span = diagnostic.span
    if span is None or span.file not in names:
        return diagnostic
    return diagnostic.with_span(replace(span, file=names[span.file]))


def _chart(run: Any, max_points: int) -> EditorBacktest:
    result = run.result
    equity = result.equity
    if max_points > 1 and len(equity) > max_points:
        # Evenly spaced samples that always keep the last value (the final equity).
        step = math.ceil(len(equity) / max_points)
        picked = list(range(0, len(equity), step))
        if picked[-1] != len(equity) - 1:
            picked.append(len(equity) - 1)
        equity = equity.iloc[picked]
    points = [(stamp.isoformat(), _json_value(value)) for stamp, value in equity.items()]
    trades = [
        {str(column): _json_value(value) for column, value in row.items()}
        for row in result.trades.to_dict("records")
    ]
    metrics = {str(key): _json_value(value) for key, value in result.metrics.items()}
    return EditorBacktest(points, trades, metrics, run.start.isoformat(), run.end.isoformat(), run.synthetic)


def _json_value(value: Any) -> Any:
    """Timestamps as ISO text, durations in seconds, NaN as None, numpy scalars as Python numbers."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, int):
        return value
    if hasattr(value, "total_seconds"):  # pandas NaT-like or odd duration types
        try:
            return float(value.total_seconds())
        except (TypeError, ValueError):
            return None
    return str(value)
