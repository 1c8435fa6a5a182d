"""The generated pandas-ta table matches the installed libraries and what the scanner finds."""

from __future__ import annotations

import pytest

from engine.indicators import _pandas_ta_scan as scan
from engine.indicators._pandas_ta import TABLE, _pandas_ta
from engine.indicators._pandas_ta_table import PANDAS_TA_VERSION, TALIB_VERSION


def test_table_was_generated_with_the_installed_versions():
    import talib

    message = "regenerate: .venv/bin/python -m engine.indicators._pandas_ta_scan"
    assert _pandas_ta().version == PANDAS_TA_VERSION, message
    assert talib.__version__ == TALIB_VERSION, message


def test_real_defaults_are_read_from_the_function_body():
    found = scan.body_defaults(_pandas_ta().macd)
    assert (
        found["fast"]["default"] == 12 and found["slow"]["default"] == 26 and found["signal"]["default"] == 9
    )
    described, _ = scan.describe_params("aroon", _pandas_ta().aroon)
    assert described["inputs"] == ["high", "low"]
    assert described["params"][0] == {"name": "length", "default": 14, "type": "int", "min": 1, "max": None}


def test_column_names_are_cleaned():
    assert scan.clean_outputs("cg", ["CG_10"]) == ("cg",)
    assert scan.clean_outputs("aroon", ["AROOND_14", "AROONU_14", "AROONOSC_14"]) == ("down", "up", "osc")
    with pytest.raises(ValueError):
        scan.clean_outputs("aroon", ["AROOND_14"])


@pytest.mark.parametrize("name", ["aroon", "dpo", "kst", "long_run"])
def test_scanning_again_reproduces_the_table(shared_data, name):
    candles = [scan.load(f) for f in scan.CANDLES if (shared_data / f).exists()]
    category = next(c for c, names in _pandas_ta().Category.items() if name in names)
    entry, reason = scan.scan_one(name, category, candles)
    assert reason == ""
    assert scan._plain(entry) == TABLE[name]
