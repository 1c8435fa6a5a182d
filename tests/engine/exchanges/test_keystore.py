"""Credentials from the encrypted key store: ``store:NAME`` references in a bot, resolved at run time
from the ``api_secrets`` rows the web app writes; never shown in an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from dsl import DiagnosticError
from engine.config import resolve_secret
from engine.exchanges import make_exchange
from engine.exchanges.ccxt_exchange import CcxtExchange
from engine.exchanges.keystore import load_key_store
from engine.store.models import ApiSecret
from engine.web.auth.crypto import SecretBoxError, load_secret_box, mask

from .test_orders import bot

KEY = "storedKEY-1234567890"
SECRET = "storedSECRET-abcdefghij"


def test_store_references_are_valid_and_literals_still_refused() -> None:
    model = bot("testnet", credentials={"key": "store:binance.key", "secret": "store:binance-secret"})
    assert model.exchange.credentials.key == "store:binance.key"
    for bad in ("store:", "store:../x", "AKIA1234567890"):
        with pytest.raises(ValidationError) as info:
            bot("testnet", credentials={"key": bad, "secret": "env:S"})
        assert bad not in str(info.value) or bad.startswith("store:")


def test_resolve_store_reference_and_missing_name() -> None:
    assert resolve_secret("store:k", store={"k": "v1"}) == "v1"
    with pytest.raises(DiagnosticError, match="no secret named k2") as info:
        resolve_secret("store:k2", store={"k": "v1"}, what="the API key")
    assert "v1" not in str(info.value)


async def test_make_exchange_reads_the_key_store(factory, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ENGINE_SECRET_KEY", raising=False)
    assert await load_key_store(factory, tmp_path) == {}
    assert not (tmp_path / "secret.key").exists()  # nothing stored: no key file made
    box = load_secret_box(tmp_path)
    async with factory() as session, session.begin():
        for name, value in (("bn.key", KEY), ("bn.secret", SECRET)):
            session.add(
                ApiSecret(name=name, kind="exchange", ciphertext=box.encrypt(value), masked=mask(value))
            )
    store = await load_key_store(factory, tmp_path)
    assert store == {"bn.key": KEY, "bn.secret": SECRET}
    model = bot("testnet", credentials={"key": "store:bn.key", "secret": "store:bn.secret"})
    exchange = make_exchange(model, session_factory=None, environ={}, key_store=store)
    assert isinstance(exchange, CcxtExchange) and exchange.mode == "testnet"
    with pytest.raises(DiagnosticError) as info:
        make_exchange(model, session_factory=None, environ={}, key_store={"bn.key": KEY})
    assert "bn.secret" in str(info.value) and KEY not in str(info.value)


async def test_a_wrong_key_does_not_open_the_store(factory, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ENGINE_SECRET_KEY", raising=False)
    box = load_secret_box(tmp_path / "other")
    async with factory() as session, session.begin():
        session.add(ApiSecret(name="k", kind="exchange", ciphertext=box.encrypt(KEY), masked=mask(KEY)))
    with pytest.raises(SecretBoxError):
        await load_key_store(factory, tmp_path)
    assert os.stat(tmp_path / "secret.key").st_mode & 0o077 == 0
