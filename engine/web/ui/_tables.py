"""Tables and figures the pages share: one look for every table (the same empty state, gains green and
losses red, less important columns hidden on a phone) and the positions table of the dashboard and
of ``/positions``.

Colours come from a row's ``tone`` field (``gain``/``loss``/``flat``, :func:`engine.web.formatting.tone`),
set on the server: the cell templates only pick a class, they never render row text as HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nicegui import ui

from engine.web.position_lines import POSITION_COLUMNS

__all__ = ["TONE_CLASS", "data_table", "figure", "positions_table", "table_columns"]

TONE_CLASS = {"gain": "text-positive", "loss": "text-negative", "flat": ""}
_TONED_CELL = (
    "<q-td :props=\"props\" :class=\"{{'text-positive': props.row.{tone} === 'gain', "
    "'text-negative': props.row.{tone} === 'loss'}}\">{{{{ props.value }}}}</q-td>"
)


def table_columns(
    spec: Sequence[tuple[str, str, bool]], *, right: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Quasar columns from (field, label, shown on a phone); numbers (``right``) align right."""
    out = []
    for name, label, phone in spec:
        column: dict[str, Any] = {
            "name": name,
            "label": label,
            "field": name,
            "align": "right" if name in right else "left",
        }
        # A figure and its unit stay on one line (``-0.00054327 BTC``); text columns wrap.
        classes = ["whitespace-nowrap"] if name in right else []
        if not phone:
            classes.append("gt-xs")
            column["headerClasses"] = "gt-xs"
        if classes:
            column["classes"] = " ".join(classes)
        out.append(column)
    return out


def data_table(
    spec: Sequence[tuple[str, str, bool]],
    rows: list[dict[str, Any]],
    *,
    empty: str,
    toned: dict[str, str] | None = None,
    right: Sequence[str] = (),
    **kwargs: Any,
) -> ui.table:
    """A table with the pages' common look. ``toned``: column -> the row field holding its tone."""
    table = ui.table(columns=table_columns(spec, right=right), rows=rows, row_key="id", **kwargs)
    table.props("flat bordered dense wrap-cells").classes("w-full")
    table.add_slot("no-data", f'<div class="full-width text-grey-7">{_escape(empty)}</div>')
    for column, tone in (toned or {}).items():
        table.add_slot(f"body-cell-{column}", _TONED_CELL.format(tone=tone))
    return table


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("{", "&#123;")


def positions_table(
    rows: list[dict[str, Any]], on_close: Callable[[dict[str, Any]], Any] | None = None
) -> ui.table:
    """The open positions (rows of :func:`engine.web.position_lines.position_cells`); with
    ``on_close``, a Close button per row (the handler gets the row and must check the user again)."""
    spec = list(POSITION_COLUMNS)
    if on_close is not None:
        spec.append(("action", "", True))
    table = data_table(
        spec,
        rows,
        empty="No open positions.",
        toned={"pnl": "tone", "pnl_pct": "tone"},
        right=("amount", "entry", "current", "pnl", "pnl_pct"),
    ).mark("positions")
    if on_close is not None:
        table.add_slot(
            "body-cell-action",
            '<q-td :props="props"><span v-if="props.row.closing" class="text-warning">close requested</span>'
            '<q-btn v-else outline dense color="negative" label="Close" '
            "@click=\"() => $parent.$emit('close', props.row)\" /></q-td>",
        )
        table.on("close", lambda event: on_close(event.args))
    return table


def figure(label: str, value: str = "–", *, tone: str = "flat", mark: str | None = None) -> ui.label:
    """A headline number with its caption; returns the number's label (``set_text`` to update)."""
    with ui.column().classes("gap-0 min-w-[8rem]"):
        ui.label(label).classes("text-caption text-grey-7")
        number = ui.label(value).classes(f"text-h6 {TONE_CLASS.get(tone, '')}")
        if mark:
            number.mark(mark)
    return number
