"""Whatever the bytes, validation returns diagnostics and never raises: random text, and the example
files with random lines dropped, duplicated or corrupted."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import validate_report
from tests.engine.config.conftest import ROOT

EXAMPLES = sorted((ROOT / "strategies").glob("*.yaml")) + sorted((ROOT / "bots").glob("*.yaml"))
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NOISE = [
    ":",
    " ",
    "\t",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    '"',
    "&a",
    "*a",
    "%",
    "#",
    "\n",
    "é",
    "\x00",
    "!!int",
]


def _check(tmp_path_factory, registry, name: str, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "strategies").mkdir()
    for example in (ROOT / "strategies").glob("*.yaml"):
        (folder / "strategies" / example.name).write_bytes(example.read_bytes())
    (folder / "bots").mkdir()
    path = folder / name
    path.write_bytes(data)
    report = validate_report([path], registry=registry, relative_to=folder)
    for diagnostic in report.diagnostics:
        assert diagnostic.span is not None and diagnostic.span.line >= 1 and diagnostic.span.col >= 1
        assert diagnostic.code[:3] in ("YAM", "CFG", "DSL")


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path_factory, registry, data):
    _check(tmp_path_factory, registry, "bots/x.yaml", data)


@SETTINGS
@given(example=st.sampled_from(EXAMPLES), seed=st.integers(0, 2**32 - 1), edits=st.integers(1, 4))
def test_mutated_examples(tmp_path_factory, registry, example, seed, edits):
    rng = random.Random(seed)
    lines = example.read_text(encoding="utf-8").split("\n")
    for _ in range(edits):
        index = rng.randrange(len(lines))
        action = rng.choice(["drop", "duplicate", "corrupt", "indent"])
        if action == "drop":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "indent":
            lines[index] = " " * rng.randrange(1, 5) + lines[index]
        elif lines[index]:
            at = rng.randrange(len(lines[index]))
            lines[index] = lines[index][:at] + rng.choice(NOISE) + lines[index][at + 1 :]
        if not lines:
            lines = [""]
    folder = example.parent.name
    _check(tmp_path_factory, registry, f"{folder}/{example.name}", "\n".join(lines).encode("utf-8"))
