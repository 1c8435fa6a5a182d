"""The invalid-input corpus: every tests/fixtures/invalid/NAME.yaml gives exactly the diagnostics in
NAME.expected (their `file:line:col: error[CODE]: message` lines, in order), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import validate_report
from tests.engine.config.conftest import INVALID

CASES = sorted(INVALID.glob("*.yaml"))


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert {p.stem for p in INVALID.glob("*.expected")} == {p.stem for p in CASES}


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_file(path: Path, registry):
    report = validate_report([path], registry=registry, relative_to=INVALID)
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").splitlines()
    assert [d.headline() for d in report.diagnostics] == expected
    assert not report.ok
