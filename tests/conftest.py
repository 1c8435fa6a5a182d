from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data" / "binance"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's real Binance candles beside the project; tests that need them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data/binance is not present")
    return SHARED_DATA
