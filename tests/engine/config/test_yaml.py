"""The line-aware YAML reader: values, positions, merge keys and the limits that keep bad input safe."""

from __future__ import annotations

import math

import pytest

from engine.config import parse_yaml, read_yaml_file
from engine.config._yaml import MAX_BYTES, MAX_NODES


def codes(doc):
    return [d.code for d in doc.diagnostics]


def test_core_schema_scalars():
    doc = parse_yaml(
        "a: [1, -2, 0o17, 0x1f, 1.5, 1e3, .inf, true, False, ~, null, '', yes, on, 5m, 10%, 012, '3', 1 BTC]\n"
    )
    assert doc.diagnostics == ()
    values = doc.root.to_python()["a"]
    assert values[:6] == [1, -2, 15, 31, 1.5, 1000.0]
    assert values[6] == math.inf
    assert values[7:12] == [True, False, None, None, ""]
    # YAML 1.2: yes/on are text, durations and percentages are text, 012 is decimal, quotes make text
    assert values[12:] == ["yes", "on", "5m", "10%", 12, "3", "1 BTC"]


def test_positions_are_one_based_and_keys_keep_their_own():
    doc = parse_yaml("strategy: x\nentry:\n  long: close > open   # comment\n")
    entry_key, entry = doc.root.items["entry"]
    assert (entry_key.line, entry_key.col) == (2, 1)
    key, value = entry.items["long"]
    assert (key.line, key.col, value.line, value.col) == (3, 3, 3, 9)
    assert (value.end_line, value.end_col) == (3, 21)  # the comment is not part of the value
    assert value.span("f.yaml").file == "f.yaml"


def test_merge_keys_and_aliases():
    doc = parse_yaml("base: &b {fee: 1, slip: 2}\nbot:\n  <<: *b\n  slip: 3\n")
    assert doc.diagnostics == ()
    assert doc.root.to_python()["bot"] == {"slip": 3, "fee": 1}


def test_explicit_tags():
    doc = parse_yaml("a: !!str 12\nb: !!float 3\nc: !!int x\n")
    data = doc.root.to_python()
    assert data["a"] == "12" and data["b"] == 3.0 and isinstance(data["b"], float)
    assert codes(doc) == ["YAML001"] and "not a valid !!int" in doc.diagnostics[0].message


def test_duplicate_keys_are_reported_and_the_first_kept():
    doc = parse_yaml("a: 1\nb: 2\na: 3\n")
    assert codes(doc) == ["YAML004"]
    assert doc.diagnostics[0].span.line == 3
    assert doc.root.to_python() == {"a": 1, "b": 2}


def test_crlf_and_bom_are_accepted():
    doc = parse_yaml(b"\xef\xbb\xbfa: 1\r\nb: 2\r\n")
    assert doc.diagnostics == ()
    assert doc.root.items["b"][0].line == 2


def test_alias_bomb_is_refused_quickly():
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 12):
        previous = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]")
    # Expanding it would build 10**12 nodes: refusing it before any walk is what keeps this test short.
    doc = parse_yaml("\n".join(lines) + "\n")
    assert doc.root is None and codes(doc) == ["YAML003"]
    assert str(MAX_NODES) in doc.diagnostics[0].message


def test_many_nodes_without_aliases_are_refused():
    doc = parse_yaml("a: [" + ", ".join(["1"] * (MAX_NODES + 10)) + "]\n")
    assert codes(doc) == ["YAML003"] and "alias" not in doc.diagnostics[0].message


def test_recursive_alias_is_an_error():
    doc = parse_yaml("a: &a {b: *a}\n")
    assert codes(doc) == ["YAML001"] and "contains it" in doc.diagnostics[0].message


def test_deep_block_nesting_is_refused_without_recursion_error():
    text = "".join(" " * i + f"k{i}:\n" for i in range(2000)) + " " * 2000 + "v: 1\n"
    doc = parse_yaml(text)
    assert codes(doc) == ["YAML003"]


def test_too_large_file(write):
    path = write("big.yaml", b"a: 1\n" + b"#" * MAX_BYTES)
    doc = read_yaml_file(path, "big.yaml")
    assert codes(doc) == ["YAML003"] and doc.diagnostics[0].span.line == 1


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"a: 1\n\x00", "NUL byte at line 2, column 1"),
        (b"a: 1\nb: \xc3\x28\n", "byte 0xc3 at line 2, column 4"),
        (b"\xfe\xff\x00a", "UTF-16"),
    ],
)
def test_encoding_problems_are_reported_at_the_start(data, fragment):
    doc = parse_yaml(data, "x.yaml")
    assert codes(doc) == ["YAML002"]
    assert fragment in doc.diagnostics[0].message
    assert (doc.diagnostics[0].span.line, doc.diagnostics[0].span.col) == (1, 1)


def test_unreadable_paths(tmp_path):
    missing = read_yaml_file(tmp_path / "nope.yaml", "nope.yaml")
    assert codes(missing) == ["CFG005"] and missing.diagnostics[0].message == "file not found"
    directory = read_yaml_file(tmp_path, "dir")
    assert codes(directory) == ["CFG005"]


def test_non_scalar_keys_are_errors():
    doc = parse_yaml("? [a, b]\n: 1\nc: 2\n")
    assert codes(doc) == ["YAML001"] and "plain text" in doc.diagnostics[0].message
    assert doc.root.to_python() == {"c": 2}
