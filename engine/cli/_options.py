"""Options several commands share, declared once so their names and help read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["DataDir", "End", "Profile", "Start"]

DataDir = Annotated[
    Path | None,
    typer.Option("--data", help="Directory of candle files named like ETH_BTC-5m.csv (default: the store)."),
]
Start = Annotated[str | None, typer.Option("--from", help="First candle time (UTC), e.g. 2024-01-01.")]
End = Annotated[str | None, typer.Option("--to", help="End of the range (UTC, exclusive).")]
Profile = Annotated[str | None, typer.Option("--profile", help="Apply this profile overlay of the bot.")]
