from __future__ import annotations

from pathlib import Path

import pytest

from dsl import Registry

ROOT = Path(__file__).resolve().parents[3]
INVALID = ROOT / "tests" / "fixtures" / "invalid"


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The engine's real registry for the example project: the built-in functions plus its feeds,
    models and sentiment namespaces (what `engine validate` checks the examples against)."""
    from engine.config._project import project_registry

    return project_registry(ROOT)


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
