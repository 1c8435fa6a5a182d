from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def make_workspace(root: Path, bots: list[str], days: int = 2) -> Path:
    """bots/ and strategies/ (copies of the examples) and synthetic candles for them under ``root``."""
    from engine.demo import write_demo_data

    (root / "bots").mkdir(parents=True)
    shutil.copytree(ROOT / "strategies", root / "strategies")
    for name in bots:
        shutil.copy(ROOT / "bots" / name, root / "bots" / name)
    write_demo_data(sorted((root / "bots").glob("*.yaml")), root / "data", days=days)
    return root


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_workspace(tmp_path, ["eth_btc_trend.yaml", "xrp_futures_breakout.yaml"], days=2)
