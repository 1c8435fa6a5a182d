"""Purge and embargo on hand-built label intervals, the window grid, and the model file's checks."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import validate_files
from engine.ml.errors import MLError
from engine.ml.walkforward import PairData, train_rows
from engine.ml.windows import Window, plan_windows, purge_mask
from tests.engine.ml.conftest import model_text

DAY = 86_400 * 10**9


def test_purge_drops_every_interval_that_touches_the_test_period():
    # Intervals [start, end] in candle units; the test period is [10, 14].
    start = np.array([0, 3, 5, 6, 9, 12, 15, 16, 19, 20])
    end = np.array([4, 8, 9, 10, 11, 13, 18, 17, 22, 25])
    keep = purge_mask(start, end, 10, 14)
    assert keep.tolist() == [True, True, True, False, False, False, True, True, True, True]


def test_embargo_widens_the_gap_on_both_sides():
    start = np.array([0, 3, 5, 6, 15, 16, 17, 19])
    end = np.array([4, 7, 8, 9, 18, 17, 20, 22])
    keep = purge_mask(start, end, 10, 14, embargo=2)
    # Kept: ends before 8 or starts after 16.
    assert keep.tolist() == [True, True, False, False, False, False, True, True]


def test_training_rows_end_their_labels_before_the_window_minus_the_embargo():
    tf = 300 * 10**9
    n = 2000
    times = np.arange(n, dtype=np.int64) * tf
    y = np.zeros(n, dtype=np.int8)
    y[-6:] = -1
    data = PairData("A/B", times, np.zeros((n, 1), np.float32), y, np.ones(n), warmup=50)
    window = Window(0, train_start=100 * tf, test_start=1000 * tf, test_end=1288 * tf)
    rows = train_rows(data, window, tf, horizon=6, purge=6, embargo=4)
    assert rows[0] == 100 and rows[-1] == 1000 - 6 - 4 - 1
    assert np.all(times[rows] + 6 * tf < window.test_start - 4 * tf)
    # A longer purge widens the gap; warm-up rows are never trained on.
    assert train_rows(data, window, tf, horizon=6, purge=20, embargo=0)[-1] == 1000 - 20 - 1
    early = Window(0, train_start=0, test_start=300 * tf, test_end=400 * tf)
    assert train_rows(data, early, tf, horizon=6, purge=6, embargo=0)[0] == 50


def test_the_window_grid_depends_on_where_the_data_starts_not_where_it_ends():
    first = 4 * 3600 * 10**9 + 7  # 04:00 on day 0
    a = plan_windows(first, 20 * DAY, train_ns=5 * DAY, step_ns=DAY)
    b = plan_windows(first, 12 * DAY + 5, train_ns=5 * DAY, step_ns=DAY)
    assert a[0].test_start == 6 * DAY and a[0].train_start == DAY
    assert a[: len(b) - 1] == b[:-1] and b[-1].test_end == 12 * DAY + 6
    chosen = plan_windows(first, 20 * DAY, train_ns=5 * DAY, step_ns=DAY, start_ns=8 * DAY, end_ns=10 * DAY)
    assert [(w.test_start, w.test_end) for w in chosen] == [(8 * DAY, 9 * DAY), (9 * DAY, 10 * DAY)]


def test_too_little_data_for_the_windows_is_a_clear_error():
    with pytest.raises(MLError, match=r"ML003.*too little data for the windows"):
        plan_windows(0, 3 * DAY, train_ns=5 * DAY, step_ns=DAY)
    with pytest.raises(MLError, match=r"too little data before 1970-01-03T00:00Z"):
        plan_windows(0, 30 * DAY, train_ns=5 * DAY, step_ns=DAY, start_ns=2 * DAY)


def test_model_file_errors_carry_file_line_col(tmp_path):
    text = model_text(label="  type: direction\n  horizon: 2000", features={"a": "rsii(close, 3)"})
    text = text.replace("  embargo: 0\n", "  embargo: 0\n  purge: 1\n")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    found = [
        f"{d.span.line}:{d.span.col} {d.code} {d.message}"
        for d in validate_files([path], relative_to=tmp_path)
    ]
    assert any(m.startswith("6:6 DSL002 unknown function 'rsii'") for m in found), found
    assert any(m.startswith("9:12 CFG002 label.horizon: 2000 candles") for m in found), found
    assert any(m.startswith("18:10 CFG002 windows.purge: 1 candles is shorter") for m in found), found
