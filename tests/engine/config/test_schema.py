"""Generated artefacts stay current, every key is described, and the exchange list matches ccxt."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from engine.config import Bot, BotOverlay, Strategy
from engine.config._exchanges import EXCHANGES
from engine.config._reference import SCHEMA_FILES, schema_text, update_reference
from tests.engine.config.conftest import ROOT


def test_committed_schema_files_are_current():
    for name in SCHEMA_FILES:
        committed = (ROOT / "schema" / name).read_text(encoding="utf-8")
        assert committed == schema_text(name), f"schema/{name} is stale: run `engine schema`"


def test_docs_key_reference_is_current():
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert update_reference(text) == text, (
        "docs/config.md is stale: run `engine schema --docs docs/config.md`"
    )


def _models(root: type[BaseModel]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    pending = [root]
    while pending:
        model = pending.pop()
        if model in found:
            continue
        found.add(model)
        for info in model.model_fields.values():
            stack = [info.annotation]
            while stack:
                item = stack.pop()
                if isinstance(item, type) and issubclass(item, BaseModel):
                    pending.append(item)
                stack.extend(typing.get_args(item))
    return found


def test_every_model_and_key_has_a_description():
    models = _models(Strategy) | _models(Bot) | _models(BotOverlay)
    assert len(models) > 20
    for model in models:
        assert (model.__doc__ or "").strip(), f"{model.__name__} has no docstring"
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"
        assert model.model_config.get("extra") == "forbid" and model.model_config.get("frozen")


def test_every_error_code_is_documented():
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    codes = ["YAML001", "YAML002", "YAML003", "YAML004"] + [f"CFG{n:03d}" for n in range(1, 11)]
    for code in codes:
        assert f"| {code} |" in text, code
    corpus = "".join(p.read_text() for p in (ROOT / "tests/fixtures/invalid").glob("*.expected"))
    used = {code for code in codes if code in corpus}
    assert used >= set(codes) - {"CFG009", "CFG010"}  # those two only happen at run time / with --profile


def test_exchange_ids_match_the_installed_ccxt():
    import ccxt

    assert tuple(sorted(ccxt.exchanges)) == EXCHANGES, (
        "regenerate engine/config/_exchanges.py from ccxt.exchanges"
    )
