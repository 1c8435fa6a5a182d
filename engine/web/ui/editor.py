"""The strategy editor: ``/editor`` lists the strategy files, ``/editor/{name}`` edits one.

Each rule of the strategy (features, entry and exit sides, confirm filters, score signals) is shown
twice: as blocks (indicator with its parameters, comparison or cross, all/any groups, look-back,
timeframe) and as DSL text. A block edit rewrites the text, a text edit rebuilds the blocks (what has
no block of its own stays a text block), and every edit is checked at once, errors with line and
column. Save (``strategies:write``) writes the file through :class:`engine.editor.EditableFile`, so
comments and key order stay, and only when the whole file, and every bot using it, validates; hot
reload picks the file up. Backtest runs a bot that uses the strategy, with the text as edited, on the
stored candles, in a worker thread.

Test hooks (``mark`` for NiceGUI's simulated user, the same name as ``data-testid`` in the browser);
``KEY`` is a rule's place with dashes (``entry-long``, ``confirm-long-0``, ``features-fast_ma``):
``strategy-select`` (the file), ``rule-KEY`` (the rule's card), ``rule-text-KEY`` (its DSL textarea), ``rule-error-KEY`` (its
problems), ``blocks-KEY`` (its blocks); inside blocks ``block-indicator``, ``block-param-NAME``
(a numeric parameter), ``block-op``, ``block-add``, ``block-remove``; ``stop-stop_loss``,
``stop-take_profit``, ``stop-trailing-activate_at``, ``stop-trailing-distance``; ``save``,
``save-status``, ``backtest-bot``, ``backtest``, ``backtest-status``, ``backtest-equity``,
``backtest-trades``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nicegui import ui

from engine.web import formatting as fmt
from engine.web.api.context import WebContext
from engine.web.auth.accounts import audit
from engine.web.ui._rule_editor import STOP_FIELDS, Node, RuleEditor, hook, number, stop_value
from engine.web.ui._tables import data_table, table_columns
from engine.web.ui.shell import action_user, allowed, client_address, frame, page_user

__all__ = ["register"]


class StrategyEditor:
    """One open editor page: the file, its rules and the actions."""

    def __init__(self, ctx: WebContext, path: Path, can_write: bool) -> None:
        from engine.config._project import find_project_root, project_registry
        from engine.editor import EditableFile, RuleContext

        self.ctx = ctx
        self.path = path
        self.can_write = can_write
        self.edit = EditableFile.open(path, relative_to=path.parent.parent)
        data = self.edit.get(())  # the whole document as plain data
        self.context = RuleContext.from_mapping(data)
        self.input_names = set(self.context.inputs)
        # The project's registry: built-in functions plus its feeds, models and sentiment namespaces.
        self.registry = project_registry(find_project_root(path))
        self.function_names = sorted(
            name for name in self.registry.functions if name not in ("crosses_above", "crosses_below")
        )
        self.data = data
        self.rules: list[RuleEditor] = []
        self.busy = False  # one backtest at a time per page (a second click while one runs is ignored)
        self.stops: dict[str, Any] = {}

    def default_call(self, name: str) -> Node:
        """A call of ``name`` with its required parameters filled (candle close, the minimum length)."""
        from dsl import NUMBER_CONST

        spec = self.registry.lookup(name)
        args: list[Node] = []
        for param in spec.params if spec is not None else ():
            if not param.required or param.keyword_only:
                continue
            if param.type == NUMBER_CONST:
                args.append(number(int(param.min) if param.min is not None and param.min > 0 else 14))
            else:
                args.append({"kind": "series", "name": "close"})
        return {"name": name, "args": args, "keywords": {}, "member": None}

    def build(self) -> None:
        from engine.editor.files import bots_using, listed_files
        from engine.editor.rules import rule_slots

        if not self.can_write:
            ui.label("Read-only: your role may look and try, not save.").classes("text-caption")
        names = [p.stem for p in listed_files(self.ctx.strategies_dir)]
        hook(
            ui.select(
                names,
                value=self.path.stem,
                label="strategy file",
                on_change=lambda e: (
                    ui.navigate.to(f"/editor/{e.value}") if e.value != self.path.stem else None
                ),
            ).classes("min-w-[14rem]"),  # the label whole, not "strateg…"
            "strategy-select",
        )
        for slot in rule_slots(self.data):
            self.rules.append(RuleEditor(self, slot))
        with ui.card().classes("w-full"):
            ui.label("Stops (a percentage, a fraction, or an expression for a price distance)").classes(
                "text-subtitle1 font-bold"
            )
            with ui.row():
                for name, keys in STOP_FIELDS:
                    value = self.edit.get(keys)
                    self.stops[name] = hook(
                        ui.input(name.replace("-", " "), value="" if value is None else str(value)).classes(
                            "min-w-[14rem]"  # the whole label, "trailing activate at", shows
                        ),
                        f"stop-{name}",
                    )
        with ui.row().classes("items-center"):
            if self.can_write:
                hook(ui.button("Save", on_click=self.save), "save")
            self.save_status = hook(ui.label("").classes("whitespace-pre font-mono"), "save-status")
        ui.label("Backtest").classes("text-h6")
        bots = [p.name for p in bots_using(self.path, self.ctx.bots_dir)]
        with ui.row().classes("items-center"):
            self.bot_select = hook(
                ui.select(bots, value=bots[0] if bots else None, label="bot").classes("min-w-[14rem]"),
                "backtest-bot",
            )
            hook(ui.button("Backtest", on_click=self.backtest), "backtest")
        self.backtest_status = hook(
            ui.label("" if bots else NO_BOT).classes("whitespace-pre"), "backtest-status"
        )
        # Shown once a backtest has run (an empty chart axis says nothing).
        self.equity = hook(ui.echart(equity_chart([])).classes("w-full h-64"), "backtest-equity")
        self.trades = hook(
            data_table(
                TRADE_SPEC,
                [],
                empty="No trades in this backtest.",
                toned={"profit_abs": "tone", "profit_pct": "tone"},
                right=("profit_abs", "profit_pct"),
                pagination=20,
            ),
            "backtest-trades",
        )
        self.equity.set_visibility(False)
        self.trades.set_visibility(False)

    def apply(self) -> None:
        """Put the page's rules and stops into the open file (idempotent)."""
        from engine.editor import DELETE

        for rule in self.rules:
            keys = rule.slot.keys
            if rule.text.strip():
                if self.edit.get(keys) != rule.text:
                    self.edit.set(keys, rule.text)
            elif self.edit.get(keys) is not None:
                self.edit.set(keys, DELETE)
        for name, keys in STOP_FIELDS:
            value = stop_value(self.stops[name].value)
            old = self.edit.get(keys)
            if value is None and old is not None:
                self.edit.set(keys, DELETE)
            elif value is not None and str(value) != str(old) and value != old:
                self.edit.set(keys, value)

    async def save(self) -> None:
        from engine.editor.files import bots_using

        user = await action_user(self.ctx, "strategies:write")
        if user is None:
            return
        broken = [rule.slot.key for rule in self.rules if not rule.valid]
        if broken:
            self.save_status.set_text(f"not saved: fix {', '.join(broken)} first")
            return
        try:
            self.apply()
        except ValueError as exc:
            self.save_status.set_text(f"not saved: {exc}")
            return
        dependents = bots_using(self.path, self.ctx.bots_dir)
        problems = await asyncio.to_thread(self.edit.save, dependents=dependents)
        if problems:
            self.save_status.set_text("not saved:\n" + "\n".join(d.headline() for d in problems))
            return
        async with self.ctx.sessions() as db, db.begin():
            await audit(
                db,
                "strategy.write",
                user_id=user.id,
                target=f"strategy:{self.path.stem}",
                address=client_address(),
                detail={"via": "editor"},
            )
        self.save_status.set_text(f"saved {self.path.name}")

    async def backtest(self) -> None:

        if await action_user(self.ctx, "read") is None:
            return
        if not self.bot_select.value:
            self.backtest_status.set_text(NO_BOT)
            return
        if self.busy:
            return
        self.busy = True
        try:
            await self._backtest()
        finally:
            self.busy = False

    async def _backtest(self) -> None:
        from dsl import DiagnosticError

        bot_path = self.ctx.bots_dir / self.bot_select.value
        try:
            self.apply()
            text = self.edit.text()
        except ValueError as exc:
            self.backtest_status.set_text(f"cannot run: {exc}")
            return
        self.backtest_status.set_text("running…")
        try:
            result = await asyncio.to_thread(self._run, bot_path, text)
        except DiagnosticError as exc:
            if all(d.code.startswith("DATA") for d in exc.diagnostics):
                # Missing candles are said once, in words a browser user can act on.
                message = await asyncio.to_thread(self._missing_data, bot_path)
                self.backtest_status.set_text(f"cannot run: {message}")
                return
            lines = [d.message if d.code.startswith("DATA") else d.headline() for d in exc.diagnostics]
            self.backtest_status.set_text("cannot run:\n" + "\n".join(lines))
            return
        except (OSError, ValueError, LookupError) as exc:
            self.backtest_status.set_text(f"cannot run: {exc}")
            return
        metrics = result.metrics
        note = " (synthetic data)" if result.synthetic else ""
        currency = fmt.quote_currency(result.trades[0]["pair"]) if result.trades else None
        self.backtest_status.set_text(
            f"{result.start[:10]} to {result.end[:10]}{note}: {len(result.trades)} trades, "
            f"final equity {fmt.money(metrics.get('final_equity'), currency)}"
        )
        self.equity.set_visibility(True)
        self.trades.set_visibility(True)
        self.equity.options.update(equity_chart(result.equity))
        self.equity.update()
        self.trades.rows = [trade_row(i, t) for i, t in enumerate(result.trades)]
        self.trades.update()

    def _run(self, bot_path: Path, text: str) -> Any:
        """The backtest on the candles the bots run on (the replay data), else the candle store."""
        from dsl import DiagnosticError
        from engine.editor import backtest_for_editor

        if self.ctx.data_dir is not None:
            try:
                return backtest_for_editor(bot_path, strategy_text=text, data_dir=self.ctx.data_dir)
            except DiagnosticError as exc:
                if not all(d.code.startswith("DATA") for d in exc.diagnostics):
                    raise
        return backtest_for_editor(bot_path, strategy_text=text)

    def _missing_data(self, bot_path: Path) -> str:
        from engine.config import load_bot
        from engine.web.bot_chart import missing_candles_note
        from engine.web.prices import candle_sources

        places = [p.label for p in candle_sources(self.ctx.data_dir)]
        try:
            bot = load_bot(bot_path)
        except Exception:  # the bot's own errors were reported by the backtest already
            return "the candles this bot trades are not stored."
        note = missing_candles_note(
            bot.model.exchange.name, ",".join(bot.model.pairs), bot.strategy.timeframe, places
        )
        return note.replace(", so there is no chart.", ".")


NO_BOT = "No bot file uses this strategy: a backtest needs a bot (pairs, capital)."
TRADE_SPEC = (
    ("pair", "Pair", True),
    ("side", "Side", False),
    ("open_time", "Opened (UTC)", False),
    ("close_time", "Closed (UTC)", True),
    ("profit_abs", "Profit", True),
    ("profit_pct", "Profit %", True),
    ("exit_reason", "Exit", False),
)
TRADE_COLUMNS = table_columns(TRADE_SPEC, right=("profit_abs", "profit_pct"))


def trade_row(index: int, trade: dict[str, Any]) -> dict[str, Any]:
    """A backtest trade as the pages show trades: times to the minute, profit with its unit."""
    pair = str(trade.get("pair") or "")
    return {
        "id": index,
        "pair": pair,
        "side": trade.get("side"),
        "open_time": str(trade.get("open_time") or "")[:16].replace("T", " "),
        "close_time": str(trade.get("close_time") or "")[:16].replace("T", " "),
        "profit_abs": fmt.money(
            trade.get("profit_abs"), fmt.quote_currency(pair) if pair else None, signed=True
        ),
        "profit_pct": fmt.percent(trade.get("profit_ratio")),
        "tone": fmt.tone(trade.get("profit_abs")),
        "exit_reason": trade.get("exit_reason"),
    }


def equity_chart(points: list[Any]) -> dict[str, Any]:
    return {
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 60, "right": 20, "top": 20, "bottom": 30},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True},
        "series": [
            {"type": "line", "name": "equity", "showSymbol": False, "data": [list(p) for p in points]}
        ],
    }


def register(ctx: WebContext) -> None:
    @ui.page("/editor")
    async def editor_index() -> None:
        from engine.editor.files import listed_files
        from engine.web.api.routes_strategies import strategy_summary

        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, "Strategy editor"):
            summaries = await asyncio.to_thread(
                lambda: [strategy_summary(p, ctx.bots_dir) for p in listed_files(ctx.strategies_dir)]
            )
            if not summaries:
                ui.label(f"No strategy files in {ctx.strategies_dir}.")
            for item in summaries:
                with hook(ui.row().classes("items-center gap-4"), f"strategy-{item['name']}"):
                    ui.link(item["name"], f"/editor/{item['name']}").classes("font-bold")
                    ui.label(item["description"] or "")
                    if item["used_by"]:
                        ui.label(f"used by {', '.join(item['used_by'])}").classes("text-caption")

    @ui.page("/editor/{name}")
    async def editor_page(name: str) -> None:
        from dsl import DiagnosticError
        from engine.editor.files import file_for

        user = await page_user(ctx, "read")
        if user is None:
            return
        with frame(user, f"Strategy editor: {name}"):
            try:
                path = file_for(ctx.strategies_dir, name)
            except ValueError as exc:
                ui.label(str(exc)).classes("text-negative")
                return
            if not path.is_file():
                ui.label(f"No strategy named {name}.").classes("text-negative")
                return
            try:
                editor = StrategyEditor(ctx, path, allowed(user, "strategies:write"))
            except DiagnosticError as exc:
                for d in exc.diagnostics:
                    ui.label(d.headline()).classes("text-negative")
                return
            editor.build()
