"""Everything a request handler needs, built once at start and kept on ``app.state.web``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.web.auth.crypto import SecretBox
from engine.web.auth.throttle import SpentTokens, Throttle
from engine.web.auth.tokens import TokenKeys
from engine.web.control import DbRuntimeControl, RuntimeControl

__all__ = ["REFRESH_COOKIE", "WebContext"]

REFRESH_COOKIE = "engine_refresh"


@dataclass
class WebContext:
    sessions: async_sessionmaker[AsyncSession]
    keys: TokenKeys
    box: SecretBox
    throttle: Throttle = field(default_factory=Throttle)
    spent_pending: SpentTokens = field(default_factory=SpentTokens)  # pending tokens are single-use
    control: RuntimeControl = field(default_factory=DbRuntimeControl)
    # Origins a browser WebSocket may come from (scheme://host:port); empty = same host only.
    allowed_origins: frozenset[str] = frozenset()
    secure_cookies: bool = True
    bots_dir: Path = Path("bots")
    strategies_dir: Path = Path("strategies")
    # The server's one tail per table for /trades/live and /events/live (made at the first socket).
    live_tails: dict[str, Any] = field(default_factory=dict)
    # Candle files the bots run on (``--replay``): the bot chart, the editor's backtest and the
    # valuation read them before the candle store. None: the candle store only.
    data_dir: Path | None = None
    _reads: async_sessionmaker[AsyncSession] | None = field(default=None, init=False, repr=False)

    def reads(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for reading only. On SQLite ``sessions`` begins every transaction IMMEDIATE (the
        write lock at once); a read held it across its awaits, while the event loop ran other work (the
        bots of ``engine serve --run``), and their order writes waited for it: a socket's sign-in check
        and the live tails' polls read through these instead (plain BEGIN, no lock in WAL mode)."""
        if self._reads is None:
            from sqlalchemy.ext.asyncio import AsyncEngine

            from engine.store import session_factory

            bind = self.sessions.kw.get("bind")
            self._reads = (
                session_factory(bind, for_reading=True) if isinstance(bind, AsyncEngine) else self.sessions
            )
        return self._reads
