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

from engine.web.api.context import WebContext
from engine.web.auth.accounts import audit
from engine.web.ui.shell import action_user, allowed, client_address, frame, page_user

__all__ = ["register"]

Node = dict[str, Any]
COMPARE_OPS = ["<", "<=", ">", ">=", "==", "!="]
CROSS_OPS = {"crosses above": "above", "crosses below": "below"}
CANDLE_COLUMNS = ["close", "open", "high", "low", "volume"]
STOP_FIELDS = (
    ("stop_loss", ("stops", "stop_loss")),
    ("take_profit", ("stops", "take_profit")),
    ("trailing-activate_at", ("stops", "trailing", "activate_at")),
    ("trailing-distance", ("stops", "trailing", "distance")),
)


def hook(element: ui.element, name: str) -> ui.element:
    """A stable name for tests: a NiceGUI marker and a ``data-testid`` attribute."""
    return element.mark(name).props(f'data-testid="{name}"')


def new_condition() -> Node:
    return {"kind": "compare", "op": ">", "left": {"kind": "series", "name": "close"}, "right": number(0)}


def number(value: float) -> Node:
    return {"kind": "number", "value": value, "percent": False}


def caret_excerpt(text: str, line: int, col: int, end_col: int | None) -> str:
    """The line of ``text`` with carets under columns ``col``..``end_col``."""
    lines = text.splitlines() or [""]
    source = lines[min(max(line, 1), len(lines)) - 1]
    width = max(1, (end_col or col + 1) - col)
    return f"{source}\n{' ' * (col - 1)}{'^' * width}"


def whole(value: Any) -> Any:
    """A number input gives floats: 21.0 is written as 21 (lengths must be whole numbers)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def lookback_value(text: str) -> int | str | None:
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def stop_value(text: str) -> str | float | None:
    """``3%`` and expressions stay text; a plain number is written as a number (not a quoted string)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


class RuleEditor:
    """One rule: its blocks, its text and its problems, kept in step."""

    def __init__(self, page: StrategyEditor, slot: Any) -> None:
        self.page = page
        self.slot = slot
        self.name = slot.key.replace(".", "-")
        self.text = slot.text
        self.tree: Node | None = None
        self.problems: list[Any] = []
        self.incomplete = False  # a block the user is still filling in: no text for it yet
        self._syncing = False
        with hook(ui.card().classes("w-full"), f"rule-{self.name}"):
            ui.label(slot.key).classes("text-subtitle1 font-bold")
            self.blocks = hook(ui.column().classes("w-full gap-1"), f"blocks-{self.name}")
            self.textarea = hook(
                ui.textarea("DSL", value=self.text, on_change=self.on_text).classes("w-full font-mono"),
                f"rule-text-{self.name}",
            ).props("autogrow")
            self.errors = hook(
                ui.label("").classes("text-negative font-mono whitespace-pre"), f"rule-error-{self.name}"
            )
        self.parse()
        self.check()
        self.render()

    # ----- text -> blocks ---------------------------------------------------------------------------
    def parse(self) -> None:
        from dsl import DiagnosticError
        from engine.editor import text_to_block

        self.tree = None
        if self.text.strip():
            try:
                self.tree = text_to_block(self.text, self.page.input_names).model_dump(mode="json")
            except DiagnosticError:
                self.tree = None  # the check shows the syntax error; the blocks wait for valid text

    def on_text(self, event: Any) -> None:
        if self._syncing:
            return
        self.text = event.value or ""
        self.incomplete = False
        self.parse()
        self.check()
        self.render()

    # ----- blocks -> text ---------------------------------------------------------------------------
    def changed(self, rerender: bool = False) -> None:
        """A block was edited: new text from the blocks, checked; the blocks are drawn again only after
        a change of structure (so an input being typed in keeps its focus)."""
        from pydantic import TypeAdapter, ValidationError

        from dsl import DiagnosticError
        from engine.editor import Block, block_to_text

        if self.tree is None:
            return
        try:
            text = block_to_text(TypeAdapter(Block).validate_python(self.tree))
        except (ValidationError, DiagnosticError, ValueError) as exc:
            self.incomplete = True
            self.errors.set_text(f"incomplete block: {str(exc).splitlines()[0]}")
            return
        self.incomplete = False
        self.text = text
        self._syncing = True
        try:
            self.textarea.set_value(text)
        finally:
            self._syncing = False
        self.check()
        if rerender:
            self.render()

    def check(self) -> None:
        from engine.editor import validate_rule

        if not self.text.strip():
            self.problems = []
            optional = self.slot.keys[0] in ("entry", "exit")
            self.errors.set_text("" if optional else "empty rule")
            return
        self.problems = validate_rule(
            self.text,
            self.slot.context(self.page.context),
            expect=self.slot.expect,
            registry=self.page.registry,
        )
        shown = []
        for d in self.problems:
            if d.span is None:
                shown.append(d.message)
            else:
                where = f"line {d.span.line}, column {d.span.col}: {d.message}"
                shown.append(f"{where}\n{caret_excerpt(self.text, d.span.line, d.span.col, d.span.end_col)}")
        self.errors.set_text("\n".join(shown))

    @property
    def valid(self) -> bool:
        if self.incomplete or self.problems:
            return False
        return bool(self.text.strip()) or self.slot.keys[0] in ("entry", "exit")

    # ----- drawing blocks ---------------------------------------------------------------------------
    def render(self) -> None:
        self.blocks.clear()
        with self.blocks:
            if self.tree is None:
                if self.text.strip():
                    ui.label("fix the text to see its blocks").classes("text-caption")
                else:
                    ui.button("+ condition", on_click=self.start).props("dense flat").mark("block-add")
                return
            self.node(self.tree, None, None)
            if self.slot.expect == "condition" and self.tree.get("kind") != "group":
                with ui.row():
                    for mode, label in (("all", "+ and"), ("any", "+ or")):
                        ui.button(label, on_click=lambda m=mode: self.wrap(m)).props("dense flat").mark(
                            "block-add"
                        )

    def start(self) -> None:
        self.tree = new_condition()
        self.changed(rerender=True)

    def wrap(self, mode: str) -> None:
        assert self.tree is not None
        self.tree = {"kind": "group", "mode": mode, "items": [self.tree, new_condition()]}
        self.changed(rerender=True)

    def replace(self, parent: Any, key: Any, node: Node) -> None:
        if parent is None:
            self.tree = node
        else:
            parent[key] = node
        self.changed(rerender=True)

    def setter(self, node: Node, field: str, convert: Any = None, rerender: bool = False) -> Any:
        def on_change(event: Any) -> None:
            value = event.value
            node[field] = convert(value) if convert is not None else value
            self.changed(rerender)

        return on_change

    def node(self, node: Node, parent: Any, key: Any) -> None:
        kind = node.get("kind")
        box = ui.row().classes("items-center gap-1 border rounded px-1 no-wrap")
        with box:
            if kind == "group":
                self.group(node)
            elif kind in ("compare", "cross"):
                self.condition(node, parent, key)
            elif kind == "indicator":
                self.indicator(node)
            elif kind == "series":
                self.series(node)
            elif kind == "number":
                hook(
                    ui.number(value=node["value"], on_change=self.setter(node, "value", whole)).classes(
                        "w-24"
                    ),
                    "block-number",
                )
                ui.checkbox("%", value=node.get("percent", False), on_change=self.setter(node, "percent"))
            elif kind == "input":
                names = sorted(self.page.input_names) or [node["name"]]
                ui.select(names, value=node["name"], on_change=self.setter(node, "name")).mark("block-input")
            elif kind in ("not", "neg"):
                ui.label("not" if kind == "not" else "-")
                self.node(node["operand"], node, "operand")
            elif kind == "arith":
                self.node(node["left"], node, "left")
                ui.select(["+", "-", "*", "/"], value=node["op"], on_change=self.setter(node, "op")).mark(
                    "block-op"
                )
                self.node(node["right"], node, "right")
            elif kind == "duration":
                ui.input(value=node["text"], on_change=self.setter(node, "text")).classes("w-20")
            elif kind == "string":
                ui.input(value=node["value"], on_change=self.setter(node, "value"))
            elif kind == "bool":
                ui.checkbox("true", value=node["value"], on_change=self.setter(node, "value"))
            else:  # raw: a construct without a block of its own, edited as text
                hook(
                    ui.input("expression", value=node.get("text", ""), on_change=self.setter(node, "text")),
                    "block-raw",
                )

    def group(self, node: Node) -> None:
        with ui.column().classes("gap-1"):
            ui.select(
                {"all": "all of (and)", "any": "any of (or)"},
                value=node["mode"],
                on_change=self.setter(node, "mode"),
            ).mark("block-group")
            items = node["items"]
            for index, item in enumerate(items):
                with ui.row().classes("items-center no-wrap"):
                    self.node(item, items, index)
                    if len(items) > 1:
                        ui.button("✕", on_click=lambda i=index: self.remove(items, i)).props(
                            "dense flat"
                        ).mark("block-remove")
            ui.button("+ condition", on_click=lambda: self.add(items)).props("dense flat").mark("block-add")

    def add(self, items: list[Node]) -> None:
        items.append(new_condition())
        self.changed(rerender=True)

    def remove(self, items: list[Node], index: int) -> None:
        if len(items) > 1:
            del items[index]
            self.changed(rerender=True)

    def condition(self, node: Node, parent: Any, key: Any) -> None:
        """A comparison or a cross: one operator select switches between them."""
        left, right = ("left", "right") if node["kind"] == "compare" else ("a", "b")
        current = node["op"] if node["kind"] == "compare" else f"crosses {node['direction']}"

        def on_op(event: Any) -> None:
            if event.value in CROSS_OPS:
                new = {
                    "kind": "cross",
                    "direction": CROSS_OPS[event.value],
                    "a": node[left],
                    "b": node[right],
                }
            else:
                new = {"kind": "compare", "op": event.value, "left": node[left], "right": node[right]}
            self.replace(parent, key, new)

        self.node(node[left], node, left)
        hook(ui.select([*COMPARE_OPS, *CROSS_OPS], value=current, on_change=on_op), "block-op")
        self.node(node[right], node, right)

    def indicator(self, node: Node) -> None:
        registry = self.page.registry
        spec = registry.lookup(node["name"])
        names = sorted({*self.page.function_names, node["name"]})

        def on_name(event: Any) -> None:
            node.update(self.page.default_call(event.value))
            self.changed(rerender=True)

        hook(ui.select(names, value=node["name"], with_input=True, on_change=on_name), "block-indicator")
        params = list(spec.params) if spec is not None else []
        for index, arg in enumerate(node["args"]):
            label = params[index].name if index < len(params) else f"#{index + 1}"
            with ui.row().classes("items-center gap-0 no-wrap").mark(f"block-param-{label}"):
                ui.label(f"{label}:").classes("text-caption")
                self.node(arg, node["args"], index)
        for name, value in node["keywords"].items():
            with ui.row().classes("items-center gap-0 no-wrap").mark(f"block-param-{name}"):
                ui.label(f"{name}=").classes("text-caption")
                self.node(value, node["keywords"], name)
        outputs = spec.outputs if spec is not None else None
        if outputs:
            ui.select([None, *outputs], value=node.get("member"), on_change=self.setter(node, "member")).mark(
                "block-member"
            )
        self.postfix(node)

    def series(self, node: Node) -> None:
        options = sorted({*CANDLE_COLUMNS, *self.page.context.features, node["name"]})
        ui.select(options, value=node["name"], with_input=True, on_change=self.setter(node, "name")).mark(
            "block-series"
        )
        self.postfix(node)

    def postfix(self, node: Node) -> None:
        """Timeframe (``@1h``) and look-back (``[3]``, ``[1d]``) of a series or an indicator."""
        ui.input(
            "timeframe",
            value=node.get("timeframe") or "",
            on_change=self.setter(node, "timeframe", lambda v: (v or "").strip() or None),
        ).classes("w-20").mark("block-timeframe")
        lookback = node.get("lookback")
        ui.input(
            "ago",
            value="" if lookback is None else str(lookback),
            on_change=self.setter(node, "lookback", lambda v: lookback_value(v or "")),
        ).classes("w-16").mark("block-lookback")


class StrategyEditor:
    """One open editor page: the file, its rules and the actions."""

    def __init__(self, ctx: WebContext, path: Path, can_write: bool) -> None:
        from engine.editor import EditableFile, RuleContext
        from engine.indicators import default_registry

        self.ctx = ctx
        self.path = path
        self.can_write = can_write
        self.edit = EditableFile.open(path, relative_to=path.parent.parent)
        data = self.edit.get(())  # the whole document as plain data
        self.context = RuleContext.from_mapping(data)
        self.input_names = set(self.context.inputs)
        self.registry = default_registry()
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
            ),
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
                        ui.input(name.replace("-", " "), value="" if value is None else str(value)),
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
                ui.select(bots, value=bots[0] if bots else None, label="bot"), "backtest-bot"
            )
            hook(ui.button("Backtest", on_click=self.backtest), "backtest")
        self.backtest_status = hook(
            ui.label("" if bots else NO_BOT).classes("whitespace-pre"), "backtest-status"
        )
        self.equity = hook(ui.echart(equity_chart([])).classes("w-full h-64"), "backtest-equity")
        self.trades = hook(
            ui.table(columns=TRADE_COLUMNS, rows=[], row_key="id", pagination=20).classes("w-full"),
            "backtest-trades",
        )

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
        from engine.editor import backtest_for_editor

        bot_path = self.ctx.bots_dir / self.bot_select.value
        try:
            self.apply()
            text = self.edit.text()
        except ValueError as exc:
            self.backtest_status.set_text(f"cannot run: {exc}")
            return
        self.backtest_status.set_text("running…")
        try:
            result = await asyncio.to_thread(backtest_for_editor, bot_path, strategy_text=text)
        except DiagnosticError as exc:
            # Missing candles are said plainly (the store's file path means nothing here).
            lines = [d.message if d.code.startswith("DATA") else d.headline() for d in exc.diagnostics]
            self.backtest_status.set_text("cannot run:\n" + "\n".join(lines))
            return
        except (OSError, ValueError, LookupError) as exc:
            self.backtest_status.set_text(f"cannot run: {exc}")
            return
        metrics = result.metrics
        note = " (synthetic data)" if result.synthetic else ""
        self.backtest_status.set_text(
            f"{result.start[:10]} to {result.end[:10]}{note}: {len(result.trades)} trades, "
            f"final equity {metrics.get('final_equity')}"
        )
        self.equity.options.update(equity_chart(result.equity))
        self.equity.update()
        self.trades.rows = [trade_row(i, t) for i, t in enumerate(result.trades)]
        self.trades.update()


NO_BOT = "No bot file uses this strategy: a backtest needs a bot (pairs, capital)."
TRADE_COLUMNS = [
    {"name": n, "label": n.replace("_", " "), "field": n, "align": "left"}
    for n in ("pair", "side", "open_time", "close_time", "profit_abs", "exit_reason")
]


def trade_row(index: int, trade: dict[str, Any]) -> dict[str, Any]:
    row = {name["field"]: trade.get(name["field"]) for name in TRADE_COLUMNS}
    for key in ("open_time", "close_time"):
        row[key] = str(row[key] or "")[:16].replace("T", " ")
    return {"id": index, **row}


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
