"""The engine's key store as the runtime sees it: every ``api_secrets`` row, decrypted, by name.

Bots refer to these keys as ``store:NAME`` (see :func:`engine.config.resolve_secret`). The rows are
written encrypted by the web app (Users & keys, ``PUT /config/secrets/NAME``); the key that opens
them is ``$ENGINE_SECRET_KEY`` or ``$ENGINE_HOME/secret.key`` (mode 0600). Decrypted values are
registered with the log redactor as they are opened, so they never reach a log line."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.store.models import ApiSecret

__all__ = ["load_key_store"]


async def load_key_store(factory: async_sessionmaker[AsyncSession], home: Path) -> dict[str, str]:
    """Name -> plaintext of every stored key; empty (and no key file made) when none is stored.
    Raises :class:`engine.web.auth.crypto.SecretBoxError` when the key does not open them."""
    async with factory() as session:
        rows = (await session.execute(select(ApiSecret.name, ApiSecret.ciphertext))).all()
    if not rows:
        return {}
    from engine.web.auth.crypto import load_secret_box

    box = load_secret_box(home)
    return {name: box.decrypt(token) for name, token in rows}
