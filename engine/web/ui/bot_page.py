"""``/bots``: every bot with a link; ``/bots/{id or name}``: one bot's candles with the strategy's
indicators and its trades marked, its trades, performance, configuration, reloads and errors.

Candles come from the engine's candle store (``$ENGINE_HOME/data``, :func:`engine.data.open_source`)
for the bot's exchange, pair and strategy timeframe; the strategy is compiled from the bot's file
(``bots.config_path``) with :func:`engine.config.load_bot`. The numeric series plotted are the
strategy's numeric features and the indicator calls inside its rules, computed by the same plan the
engine trades with. Loading and computing run in a worker thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nicegui import ui
from sqlalchemy import select

from engine.store.enums import EventCategory
from engine.store.models import Bot, EquitySnapshot, Event, Trade
from engine.web.api.context import WebContext
from engine.web.queries import (
    alerts_query,
    bot_by_ref,
    events_query,
    last_snapshot_times,
    pending_by_bot,
    trade_totals,
    trades_query,
)
from engine.web.ui.dashboard import columns, money, request_bot_command, when
from engine.web.ui.shell import action_user, allowed, frame, page_user

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
    "register",
    "resolve_config",
]

DISPLAY_CANDLES = 500
MAX_INDICATORS = 8
TRADE_ROWS = 200


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
        "title": {"text": pair, "textStyle": {"fontSize": 14}},
        "legend": {"top": 5, "right": 30, "data": [s["name"] for s in series[1:]]},
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


def load_bot_chart(
    config_path: str | None, bots_dir: Path, pair: str | None, trades: list[Trade]
) -> BotChart:
    """Load the bot's file, its candles for ``pair`` (default: its first pair) and build the chart."""
    from engine.data import DataError, open_source

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
    try:
        candles = open_source(exchange=exchange).load(pair, timeframe)
    except DataError as exc:
        reason = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        return dataclasses.replace(
            base, note=f"No {timeframe} candles stored for {exchange} {pair}: {reason}"
        )
    if candles.empty:
        return dataclasses.replace(base, note=f"No {timeframe} candles stored for {exchange} {pair}.")
    window = candles.tail(
        DISPLAY_CANDLES + 3 * strategy.warmup + 100
    )  # indicators settle before the shown part
    series = indicator_series(strategy.plan, list(strategy.model.features))
    indicators = _evaluate_series(strategy.plan, series, window) if series else window.iloc[:, :0]
    shown = window.tail(DISPLAY_CANDLES)
    options = candle_chart(pair, shown, indicators.loc[shown.index], [t for t in trades if t.pair == pair])
    return dataclasses.replace(base, options=options)


# ---- performance -------------------------------------------------------------------------------


def performance(trades: list[Trade], equity: list[tuple[Any, float]]) -> dict[str, str]:
    """The backtest report's headline numbers on the bot's closed trades and equity snapshots."""
    import pandas as pd

    from engine.backtest.metrics import compute_metrics

    if not equity:
        return {}
    frame = pd.DataFrame(
        {
            "pair": [t.pair for t in trades],
            "open_time": pd.to_datetime([t.open_time for t in trades], utc=True),
            "close_time": pd.to_datetime([t.close_time for t in trades], utc=True),
            "profit_abs": [float(t.profit_abs) for t in trades],
            "profit_ratio": [t.profit_ratio for t in trades],
            "fees": [float(t.fees) for t in trades],
        }
    )
    curve = pd.Series(
        [e for _, e in equity], index=pd.DatetimeIndex(pd.to_datetime([t for t, _ in equity], utc=True))
    )
    m = compute_metrics(frame, curve, float(curve.iloc[0]))

    def pct(x: float) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.2%}"

    def num(x: float) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"

    return {
        "Equity": money(m["final_equity"]),
        "Return": pct(m["total_return"]),
        "Max drawdown": pct(-m["max_drawdown"]),
        "Sharpe": num(m["sharpe"]),
        "Trades": str(m["trades"]),
        "Win rate": pct(m["win_rate"]).lstrip("+"),
        "Profit factor": num(m["profit_factor"]),
        "Fees": money(m["fees_paid"]),
    }


# ---- pages -------------------------------------------------------------------------------------


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": when(event.time),
        "kind": f"{event.category}/{event.kind}",
        "message": event.message,
    }


def _trade_row(trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.id,
        "pair": trade.pair,
        "side": str(trade.side),
        "opened": when(trade.open_time),
        "closed": when(trade.close_time),
        "open": money(trade.open_price),
        "close": money(trade.close_price),
        "amount": money(trade.amount),
        "profit": money(trade.profit_abs, signed=True),
        "ratio": f"{trade.profit_ratio:+.2%}",
        "reason": trade.exit_reason,
    }


async def _bots_list(ctx: WebContext) -> None:
    async with ctx.sessions() as db:
        bots = list((await db.scalars(select(Bot).order_by(Bot.name))).all())
        totals = await trade_totals(db)
        last = await last_snapshot_times(db)
    if not bots:
        ui.label("No bots yet.")
        return
    with ui.grid(columns=6).classes("gap-x-6 gap-y-1 items-center"):
        for head in ("Bot", "Mode", "Status", "Last candle", "Trades", "Profit"):
            ui.label(head).classes("font-bold")
        for bot in bots:
            total = totals.get(bot.id)
            ui.link(bot.name, f"/bots/{bot.id}")  # the name as text
            ui.label(str(bot.mode))
            ui.label(str(bot.status))
            ui.label(when(last.get(bot.id)))
            ui.label(str(total.trades if total else 0))
            ui.label(money(total.profit if total else 0, signed=True))


async def _bot_detail(ctx: WebContext, bot: Bot, can_control: bool) -> None:
    async with ctx.sessions() as db:
        trades = list((await db.scalars(trades_query(bot_id=bot.id).limit(TRADE_ROWS))).all())
        equity_rows = (
            await db.execute(
                select(EquitySnapshot.time, EquitySnapshot.equity)
                .where(EquitySnapshot.bot_id == bot.id)
                .order_by(EquitySnapshot.time, EquitySnapshot.id)
            )
        ).all()
        pending = (await pending_by_bot(db)).get(bot.id, [])
        reloads = list(
            (await db.scalars(events_query(bot_id=bot.id, category=EventCategory.RELOAD).limit(50))).all()
        )
        problems = list((await db.scalars(alerts_query(bot_id=bot.id).limit(50))).all())
    bot_id, config_path = bot.id, bot.config_path

    with ui.row().classes("items-center gap-6"):
        ui.label(f"{bot.status} ({bot.mode})").classes("text-subtitle1")
        if bot.account:
            ui.label(f"Account: {bot.account}")
        status_box = ui.row()
        with status_box:
            for command in pending:
                ui.label(f"Pending: {command.command} (requested {when(command.requested_at)})").classes(
                    "text-warning"
                )

        async def command(name: str) -> None:
            if await request_bot_command(ctx, bot_id, name) is not None:
                with status_box:
                    ui.label(f"Pending: {name}").classes("text-warning")

        if can_control:
            ui.button("Start", on_click=lambda: command("start")).props("dense")
            ui.button("Stop", on_click=lambda: command("stop")).props("dense color=negative")
    if bot.last_error:
        ui.label(f"Last error: {bot.last_error}").classes("text-negative")

    ui.label("Chart").classes("text-h6")
    pair_row = ui.row()
    chart_box = ui.column().classes("w-full")

    async def show_chart(pair: str | None) -> BotChart:
        result = await asyncio.to_thread(load_bot_chart, config_path, ctx.bots_dir, pair, trades)
        chart_box.clear()
        with chart_box:
            if result.options is not None:
                ui.echart(result.options).classes("w-full").style("height: 480px")
            if result.note:
                ui.label(result.note).classes("text-italic")
        return result

    first = await show_chart(None)
    if len(first.pairs) > 1:

        async def switch(event: Any) -> None:
            if await action_user(ctx, "read") is None:
                return
            await show_chart(event.value)

        with pair_row:
            ui.select(list(first.pairs), value=first.pairs[0], label="Pair", on_change=switch).classes("w-48")

    ui.label("Performance").classes("text-h6")
    numbers = performance(trades, [(t, float(e)) for t, e in equity_rows])
    if numbers:
        with ui.grid(columns=8).classes("gap-x-6"):
            for key in numbers:
                ui.label(key).classes("text-caption")
            for value in numbers.values():
                ui.label(value).classes("text-subtitle1")
    else:
        ui.label("No equity recorded yet.")

    ui.label(f"Trades (latest {TRADE_ROWS})").classes("text-h6")
    ui.table(
        columns=columns(
            "pair", "side", "opened", "closed", "open", "close", "amount", "profit", "ratio", "reason"
        ),
        rows=[_trade_row(t) for t in trades],
        row_key="id",
    ).classes("w-full")

    with ui.row().classes("w-full no-wrap gap-4"):
        with ui.column().classes("w-1/2"):
            ui.label("Reloads").classes("text-h6")
            ui.table(
                columns=columns("time", "kind", "message"),
                rows=[_event_row(e) for e in reloads],
                row_key="id",
            ).mark("reloads")
        with ui.column().classes("w-1/2"):
            ui.label("Errors and alerts").classes("text-h6")
            ui.table(
                columns=columns("time", "kind", "message"),
                rows=[_event_row(e) for e in problems],
                row_key="id",
            ).mark("alerts")

    ui.label("Configuration").classes("text-h6")
    for line in first.config_errors:
        ui.label(line).classes("text-negative font-mono")
    if first.config_text is None:
        ui.label("The bot's file is not available.")
    elif "```" in first.config_text:
        # ui.code renders through a Markdown fence that such text could close: show it as plain text.
        ui.label(first.config_text).classes("font-mono whitespace-pre")
    else:
        ui.code(first.config_text, language="yaml").classes("w-full")


def register(ctx: WebContext) -> None:
    @ui.page("/bots")
    async def bots_page() -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Bots"):
            await _bots_list(ctx)

    @ui.page("/bots/{ref}")
    async def bot_page(ref: str) -> None:
        user = await page_user(ctx, "read")
        if user is None:
            return
        async with ctx.sessions() as db:
            bot = await bot_by_ref(db, ref)
        with frame(user, f"Bot {bot.name}" if bot else "Bot not found"):
            if bot is None:
                ui.label(f"No bot with id or name {ref!r}.")
                ui.link("All bots", "/bots")
                return
            await _bot_detail(ctx, bot, allowed(user, "bots:control"))
