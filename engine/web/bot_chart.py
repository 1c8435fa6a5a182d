"""A bot's candle chart for the bot page, as ECharts options: candlesticks from the engine's candle
store, the strategy's numeric series (its numeric features and the indicator calls its rules use,
computed by the same compiled plan the engine trades with) and the bot's trades as entry/exit markers.

:func:`load_bot_chart` does file and pandas work: call it in a worker thread.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.store.models import Trade

if TYPE_CHECKING:
    import pandas as pd

    from dsl import Plan
    from engine.config import LoadedBot

__all__ = [
    "DISPLAY_CANDLES",
    "BotChart",
    "candle_chart",
    "indicator_series",
    "load_bot_chart",
    "missing_candles_note",
    "resolve_config",
]

DISPLAY_CANDLES = 500
MAX_INDICATORS = 8


# ---- the chart (pure once the inputs are loaded) -----------------------------------------------


def _expression(plan: Plan, node_id: int) -> str:
    """A readable form of a plan node: ``ema(close, 9)``, ``rsi(close, 14)@1h``."""
    node = plan.nodes[node_id]
    args = node.args

    def sub(i: int) -> str:
        return _expression(plan, i)

    match node.op:
        case "column":
            return str(args[0])
        case "const":
            return f"{args[0]:g}" if isinstance(args[0], float) else str(args[0])
        case "call":
            parts = [sub(v) if kind == "node" else str(v) for _, kind, v in args[1]]
            return f"{args[0]}({', '.join(parts)})"
        case "output":
            return f"{sub(args[0])}.{args[1]}"
        case "align":
            return f"{sub(args[0])}@{plan.nodes[args[0]].tf}"
        case "neg":
            return f"-{sub(args[0])}"
        case "binary":
            return f"({sub(args[1])} {args[0]} {sub(args[2])})"
        case "shift":
            return f"{sub(args[0])}[{args[1]}]"
        case "feed":
            return ".".join((args[0], *args[1]))
    return f"%{node_id}"


def indicator_series(plan: Plan, features: list[str]) -> dict[str, int]:
    """Label -> plan node of the numeric series worth plotting: the numeric features by name, then
    the indicator calls the rules use (on the strategy's timeframe, or brought down to it)."""
    from dsl.types import Kind

    def plottable(i: int) -> bool:
        node = plan.nodes[i]
        if node.type.kind is not Kind.NUMBER or not node.type.series or node.tf != plan.timeframe:
            return False
        if node.op == "call":
            return (
                plan.registry.functions[node.args[0]].outputs is None
            )  # a multi-output frame is not a series
        return node.op in ("output", "align")

    chosen: dict[str, int] = {}
    for name in features:
        node_id = plan.outputs.get(name)
        if node_id is not None and plottable(node_id):
            chosen[name] = node_id
    seen = set(chosen.values())
    for i in range(len(plan.nodes)):
        if len(chosen) >= MAX_INDICATORS:
            break
        if i not in seen and plottable(i):
            chosen[_expression(plan, i)] = i
            seen.add(i)
    return chosen


def _evaluate_series(plan: Plan, series: dict[str, int], candles: pd.DataFrame) -> pd.DataFrame:
    from dsl.types import NUMBER

    extended = dataclasses.replace(plan, outputs=dict(series), output_types=dict.fromkeys(series, NUMBER))
    return extended.evaluate(candles)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else round(float(value), 10)


def candle_chart(
    pair: str, candles: pd.DataFrame, indicators: pd.DataFrame, trades: list[Trade]
) -> dict[str, Any]:
    """ECharts options: candlesticks, price-scale indicators over them, other indicators in a lower
    panel, and the trades' entries and exits as markers on their candles."""
    labels = [f"{t:%Y-%m-%d %H:%M}" for t in candles.index]
    close_level = float(candles["close"].abs().median()) or 1.0
    overlay, lower = [], []
    for name in indicators.columns:
        values = indicators[name]
        level = float(values.abs().median()) if values.notna().any() else 0.0
        (overlay if 0.5 <= level / close_level <= 2.0 else lower).append(name)
    has_lower = bool(lower)
    grids = [{"left": 70, "right": 30, "top": 40, "height": "55%" if has_lower else "75%"}]
    if has_lower:
        grids.append({"left": 70, "right": 30, "top": "72%", "height": "18%"})
    x_axes = [{"type": "category", "data": labels, "gridIndex": g, "scale": True} for g in range(len(grids))]
    y_axes = [{"type": "value", "scale": True, "gridIndex": g} for g in range(len(grids))]
    ohlc = candles[["open", "close", "low", "high"]].to_numpy()
    series: list[dict[str, Any]] = [
        {"type": "candlestick", "name": pair, "data": [[_number(v) for v in row] for row in ohlc]}
    ]
    for name in overlay + lower:
        axis = 1 if name in lower else 0
        series.append(
            {
                "type": "line",
                "name": name,
                "showSymbol": False,
                "xAxisIndex": axis,
                "yAxisIndex": axis,
                "data": [_number(v) for v in indicators[name].to_numpy()],
            }
        )
    entries, exits = _markers(candles, labels, trades)
    series.append(
        {"type": "scatter", "name": "entries", "symbol": "triangle", "symbolSize": 12, "data": entries}
    )
    series.append({"type": "scatter", "name": "exits", "symbol": "diamond", "symbolSize": 11, "data": exits})
    return {
        "animation": False,
        "title": {"text": pair, "left": 0, "textStyle": {"fontSize": 14}},
        # A scrolling legend stays on one line beside the title, however narrow the screen.
        "legend": {
            "type": "scroll",
            "top": 0,
            "left": 90,
            "right": 10,
            "data": [s["name"] for s in series[1:]],
        },
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "cross"}},
        "grid": grids,
        "xAxis": x_axes,
        "yAxis": y_axes,
        "dataZoom": [{"type": "inside", "xAxisIndex": list(range(len(grids)))}],
        "series": series,
    }


def _markers(
    candles: pd.DataFrame, labels: list[str], trades: list[Trade]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Entry and exit markers on the candle holding each time; times outside the candles are left out."""
    import pandas as pd

    index = candles.index
    first, end = (index[0], index[-1] + (index[-1] - index[-2])) if len(index) > 1 else (None, None)

    def at(time: Any) -> str | None:
        stamp = pd.Timestamp(time)
        if first is None or stamp < first or stamp >= end:
            return None
        return labels[int(index.searchsorted(stamp, side="right")) - 1]

    entries, exits = [], []
    for trade in trades:
        opened, closed = at(trade.open_time), at(trade.close_time)
        if opened is not None:
            entries.append(
                {"name": f"#{trade.id} {trade.side} entry", "value": [opened, float(trade.open_price)]}
            )
        if closed is not None:
            exits.append(
                {
                    "name": f"#{trade.id} exit ({trade.exit_reason})",
                    "value": [closed, float(trade.close_price)],
                }
            )
    return entries, exits


# ---- loading (worker thread) -------------------------------------------------------------------


@dataclass(frozen=True)
class BotChart:
    """What the bot page shows from the bot's file: the chart (or a note why there is none), the
    configuration text and its problems."""

    pairs: tuple[str, ...] = ()
    options: dict[str, Any] | None = None
    note: str | None = None
    config_text: str | None = None
    config_errors: tuple[str, ...] = ()


def resolve_config(config_path: str | None, bots_dir: Path) -> Path | None:
    """The bot file: as recorded (absolute, or relative to the working directory), else relative to
    the bots directory."""
    if not config_path:
        return None
    path = Path(config_path)
    for candidate in (path, bots_dir / path, bots_dir / path.name):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    return None


def _load_config(path: Path) -> tuple[LoadedBot | None, str | None, tuple[str, ...]]:
    from dsl.errors import DiagnosticError
    from engine.config import load_bot

    try:
        loaded = load_bot(path)
    except DiagnosticError as exc:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
        return None, text, tuple(d.headline() for d in exc.diagnostics)
    return loaded, loaded.text, ()


def missing_candles_note(exchange: str, pair: str, timeframe: str, places: list[str]) -> str:
    """Said once, to a browser user: what is missing, where it was looked for, and what an admin runs."""
    where = " or ".join(places) if places else "the candle store"
    return (
        f"No {timeframe} candles of {pair} ({exchange}) in {where}, so there is no chart. "
        f"An admin can fetch them on the server with: engine data download -e {exchange} "
        f"--pairs {pair} --timeframe {timeframe}"
    )


def load_bot_chart(
    config_path: str | None,
    bots_dir: Path,
    pair: str | None,
    trades: list[Trade],
    data_dir: Path | None = None,
    until: datetime | None = None,
) -> BotChart:
    """Load the bot's file, its candles for ``pair`` (default: its first pair) from the candle files
    the bots run on (``data_dir``, then the candle store) and build the chart. ``until`` (UTC): the
    bot's last candle; a replay's file also holds candles the bot has not reached, left out."""
    import pandas as pd

    from engine.data import DataError
    from engine.web.prices import candle_sources

    path = resolve_config(config_path, bots_dir)
    if path is None:
        where = f" ({config_path})" if config_path else ""
        return BotChart(note=f"The bot's configuration file is not available{where}: no chart.")
    loaded, text, errors = _load_config(path)
    if loaded is None:
        return BotChart(
            note="The configuration has errors: no chart.", config_text=text, config_errors=errors
        )
    pairs = tuple(loaded.model.pairs)
    pair = pair if pair in pairs else pairs[0]
    strategy = loaded.strategy
    timeframe = strategy.timeframe
    exchange = loaded.model.exchange.name
    base = BotChart(pairs=pairs, config_text=text)
    candles = None
    places = candle_sources(data_dir, exchange)
    for place in places:
        try:
            found = place.source.load(pair, timeframe)
        except (DataError, OSError, ValueError):
            continue
        if until is not None:
            last = pd.Timestamp(until)
            found = found[found.index <= (last.tz_localize("UTC") if last.tzinfo is None else last)]
        if not found.empty:
            candles = found
            break
    if candles is None:
        note = missing_candles_note(exchange, pair, timeframe, [p.label for p in places])
        return dataclasses.replace(base, note=note)
    window = candles.tail(
        DISPLAY_CANDLES + 3 * strategy.warmup + 100
    )  # indicators settle before the shown part
    series = indicator_series(strategy.plan, list(strategy.model.features))
    indicators = _evaluate_series(strategy.plan, series, window) if series else window.iloc[:, :0]
    shown = window.tail(DISPLAY_CANDLES)
    options = candle_chart(pair, shown, indicators.loc[shown.index], [t for t in trades if t.pair == pair])
    return dataclasses.replace(base, options=options)
