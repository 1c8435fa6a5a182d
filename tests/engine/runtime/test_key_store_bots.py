"""Bots whose credentials are ``store:NAME`` keys of the encrypted key store: the runtime opens the store
with the engine's secret key when such a bot starts; a missing key or a wrong secret key keeps that bot
from starting (reported with its reason) while the other bots run."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet

from engine.config import load_bot
from engine.exchanges.ccxt_exchange import CcxtExchange
from engine.store.models import ApiSecret
from engine.web.auth.crypto import SecretBox, mask
from tests.engine.runtime.conftest import make_workspace
from tests.engine.runtime.helpers import database, make_runtime

KEY, SECRET = "storedKEY-0123456789", "storedSECRET-abcdefghij"


def _workspace(tmp_path: Path) -> Path:
    root = make_workspace(tmp_path, ["eth_btc_trend.yaml"], days=1)
    text = (root / "bots" / "eth_btc_trend.yaml").read_text()
    keyed = text.replace("bot: eth-btc-trend", "bot: eth-btc-keyed").replace(
        "  mode: paper",
        "  mode: testnet\n  credentials: {key: store:bn.key, secret: store:bn.secret}",
        1,
    )
    assert keyed != text and "store:bn.key" in keyed
    (root / "bots" / "keyed.yaml").write_text(keyed)
    return root


async def _store(factory, box: SecretBox, **values: str) -> None:
    async with factory() as session, session.begin():
        for name, value in values.items():
            session.add(
                ApiSecret(name=name, kind="exchange", ciphertext=box.encrypt(value), masked=mask(value))
            )


async def test_a_missing_stored_key_stops_only_that_bot(tmp_path: Path, monkeypatch) -> None:
    root = _workspace(tmp_path)
    monkeypatch.setenv("ENGINE_HOME", str(root))
    monkeypatch.setenv("ENGINE_SECRET_KEY", Fernet.generate_key().decode())
    async with database(root) as factory:
        runtime = make_runtime(root, factory)
        await runtime.start()
        try:
            assert set(runtime.slots) == {"eth-btc-trend"}
            (message,) = runtime.file_errors.values()
            assert "eth-btc-keyed: cannot start" in message and "no secret named bn.key" in message
        finally:
            await runtime.stop()


async def test_stored_keys_open_with_the_engine_key(tmp_path: Path, monkeypatch) -> None:
    root = _workspace(tmp_path)
    monkeypatch.setenv("ENGINE_HOME", str(root))
    secret_key = Fernet.generate_key()
    async with database(root) as factory:
        await _store(factory, SecretBox(secret_key), **{"bn.key": KEY, "bn.secret": SECRET})
        runtime = make_runtime(root, factory)
        loaded = load_bot(root / "bots" / "keyed.yaml")
        monkeypatch.setenv("ENGINE_SECRET_KEY", secret_key.decode())
        exchange = await runtime._stored_key_exchange(loaded)
        assert isinstance(exchange, CcxtExchange) and exchange.mode == "testnet"
        assert exchange._credentials == {"apiKey": KEY, "secret": SECRET}
        assert await runtime._stored_key_exchange(load_bot(root / "bots" / "eth_btc_trend.yaml")) is None

        monkeypatch.setenv("ENGINE_SECRET_KEY", Fernet.generate_key().decode())  # the wrong key
        await runtime.start()
        try:
            assert set(runtime.slots) == {"eth-btc-trend"}
            (message,) = runtime.file_errors.values()
            assert "key store cannot be opened" in message and KEY not in message
        finally:
            await runtime.stop()
