"""DSL errors land on the exact file column whatever the YAML scalar style (plain, quoted with
escapes, literal and folded blocks, multi-line plain), checked by example and by property."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import validate_report
from engine.config._sources import LineIndex, scalar_source
from engine.config._yaml import parse_yaml


def _source_for(text: str, *path: str):
    doc = parse_yaml(text, "s.yaml")
    node = doc.root
    for key in path:
        node = node.get(key)
    return scalar_source(node, node.value, "s.yaml", doc.text, LineIndex(doc.text))


def test_plain_scalar_single_segment():
    source = _source_for("rule: close > open\n", "rule")
    assert source.segments == ((0, 1, 7),)


def test_double_quoted_with_escapes():
    source = _source_for('rule: "a == \\"x\\" and b"\n', "rule")
    assert source.text == 'a == "x" and b'
    assert source.position(source.text.index("and")) == (1, 19)


def test_single_quoted_doubling():
    source = _source_for("rule: 'it''s or zz'\n", "rule")
    assert source.text == "it's or zz"
    assert source.position(source.text.index("zz")) == (1, 17)


def test_literal_block_lines():
    source = _source_for("rule: |\n  close > 1\n    and bad\n", "rule")
    assert source.position(source.text.index("bad")) == (3, 9)


def test_folded_plain_scalar():
    source = _source_for("rule: close > 1\n  and\n     bad\n", "rule")
    assert source.text == "close > 1 and bad"
    assert source.position(source.text.index("bad")) == (3, 6)


STYLES = ["plain", "double", "single", "literal", "folded", "multiline"]


def _render(style: str, left: str, right: str, indent: int) -> str:
    pad = " " * indent
    expression = f"{left} and {right}"
    if style == "plain":
        return f"{pad}long: {expression}\n"
    if style == "double":
        return f"{pad}long: {json.dumps(expression)}\n"
    if style == "single":
        return f"{pad}long: '{expression}'\n"
    if style == "literal":
        return f"{pad}long: |\n{pad}  {left}\n{pad}    and {right}\n"
    if style == "folded":
        return f"{pad}long: >-\n{pad}  {left}\n{pad}  and {right}\n"
    return f"{pad}long: {left}\n{pad}   and {right}\n"


left_parts = st.sampled_from(
    ["close > open", "rsi(close, 14) < 30", "volume > sma(volume, 20)", "close[1] > 1"]
)
right_parts = st.sampled_from(["{} > 1", "close > {}", "{}[2] < open", "not ({} > 2)"])
bad_names = st.from_regex(r"zz[a-z]{1,6}", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    style=st.sampled_from(STYLES), left=left_parts, right=right_parts, bad=bad_names, indent=st.integers(2, 6)
)
def test_unknown_name_is_reported_at_its_column(tmp_path_factory, registry, style, left, right, bad, indent):
    body = _render(style, left, right.format(bad), indent)
    text = f"strategy: prop\ntimeframe: 5m\nentry:\n{body}"
    path = tmp_path_factory.mktemp("p") / "s.yaml"
    path.write_text(text, encoding="utf-8")
    report = validate_report([path], registry=registry, relative_to=path.parent)
    assert [d.code for d in report.diagnostics] == ["DSL003"], text
    span = report.diagnostics[0].span
    lines = text.split("\n")
    assert lines[span.line - 1][span.col - 1 : span.end_col - 1] == bad, text
