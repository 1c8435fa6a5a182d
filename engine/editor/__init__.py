"""The visual strategy editor's model: blocks <-> DSL text <-> the strategy's YAML file.

    block = text_to_block("crosses_above(ema(close, fast), ema(close, 26))", inputs={"fast"})
    text = block_to_text(block)                                   # back to DSL text
    problems = validate_rule(text, RuleContext.from_file(path))   # diagnostics, columns in `text`
    edit = EditableFile.open(path); edit.set_rule(("entry", "long"), text)
    problems = edit.save()                                        # [] when written
    problems = validate_text(path, new_text, kind="strategy")       # a whole unsaved file

The web page is a thin client of these functions; nothing here draws anything.
"""

from engine.editor.backtest import EditorBacktest, backtest_for_editor
from engine.editor.blocks import (
    Arith,
    Block,
    Compare,
    Cross,
    Duration,
    Flag,
    Group,
    Indicator,
    Input,
    Neg,
    Not,
    Number,
    RawExpr,
    Series,
    Text,
)
from engine.editor.convert import block_to_expr, block_to_text, expr_to_block, text_to_block
from engine.editor.validate import RULE_FILE, RuleContext, validate_block, validate_rule
from engine.editor.yaml_edit import DELETE, EditableFile, validate_text

__all__ = [
    "DELETE",
    "RULE_FILE",
    "Arith",
    "Block",
    "Compare",
    "Cross",
    "Duration",
    "EditableFile",
    "EditorBacktest",
    "Flag",
    "Group",
    "Indicator",
    "Input",
    "Neg",
    "Not",
    "Number",
    "RawExpr",
    "RuleContext",
    "Series",
    "Text",
    "backtest_for_editor",
    "block_to_expr",
    "block_to_text",
    "expr_to_block",
    "text_to_block",
    "validate_block",
    "validate_rule",
    "validate_text",
]
