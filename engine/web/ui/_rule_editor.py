"""The strategy editor's rule widget: one rule shown as blocks and as DSL text kept in step (see
:mod:`engine.web.ui.editor` for the page and its test hooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nicegui import ui

if TYPE_CHECKING:
    from engine.web.ui.editor import StrategyEditor

__all__ = ["RuleEditor"]

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
        box = ui.row().classes("items-center gap-1 border rounded px-1 flex-wrap max-w-full")
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
