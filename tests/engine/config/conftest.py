from __future__ import annotations

from pathlib import Path

import pytest

from dsl import Registry

ROOT = Path(__file__).resolve().parents[3]
INVALID = ROOT / "tests" / "fixtures" / "invalid"


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The engine's real function registry (built once; the configuration is checked against it)."""
    from engine.indicators import default_registry

    return default_registry()


@pytest.fixture
def write(tmp_path: Path):
    """Write a file under tmp_path (text or bytes) and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write
