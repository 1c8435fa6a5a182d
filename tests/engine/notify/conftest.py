from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.observability import LoggingSetup, SecretRegistry, setup_logging


@dataclass
class CapturedLogs:
    setup: LoggingSetup
    console: io.StringIO

    def text(self) -> str:
        """Everything written: the console and every JSON-lines file."""
        self.setup.flush()
        assert self.setup.log_dir is not None
        files = sorted(self.setup.log_dir.glob("*.jsonl"))
        return self.console.getvalue() + "".join(p.read_text(encoding="utf-8") for p in files)

    def file(self, category: str) -> str:
        self.setup.flush()
        path = self.setup.file_path(category)
        return path.read_text(encoding="utf-8") if path.exists() else ""


@pytest.fixture
def registry() -> SecretRegistry:
    return SecretRegistry()


@pytest.fixture
def logs(tmp_path: Path, registry: SecretRegistry) -> Iterator[CapturedLogs]:
    console = io.StringIO()
    setup = setup_logging(
        tmp_path / "logs", mode="paper", console="plain", level="DEBUG", stream=console, secrets=registry
    )
    try:
        yield CapturedLogs(setup, console)
    finally:
        setup.close()
